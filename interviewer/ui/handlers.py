"""The browser UI (Gradio 6): components and small handlers over :class:`Interviewer`.

Nothing here grades, retrieves or decides; every handler calls the engine and renders its state.
The whole chat is re-rendered from the session's checkpointed state, so a page refresh or an app
restart shows exactly what the engine has; only while a model is still writing the next question (or
an answer in the reverse stage) does ``send`` show it as a provisional bubble. The session id lives in
the browser (``gr.BrowserState``, encrypted with a secret kept in the data directory so it survives
restarts).

Named API endpoints (for ``gradio_client``): ``new_session``, ``send``, ``harder_ksana``, ``harder``,
``hint``, ``skip``, ``end``, ``rate``, ``export``, ``list_sessions``, ``resume``, ``apply_settings``,
``reindex``, ``audit``. The session id is an explicit input (``sid``) of the interview endpoints.
"""

from __future__ import annotations

import html
import logging
import queue
import re
import secrets
import string
import threading
import time
from pathlib import Path
from typing import Any

from interviewer.config import is_loopback
from interviewer.engine.commands import RATINGS, parse_command
from interviewer.knowledge.audit import VERDICT_ZH, audit_paths
from interviewer.report.transcript import STAGE_NAMES, build_transcript, render, safe_export_path
from interviewer.ui.gradio_import import import_gradio

gr = import_gradio()
log = logging.getLogger(__name__)

AUTH_USER = "interviewer"
STORAGE_KEY = "llm-interviewer-session"
EXPORT_FORMATS = ("json", "md", "html")
MODE_OFFLINE = "离线（不调用模型，按评分表评分）"
MODE_OPENAI = "OpenAI 兼容接口"
LANG_CHOICES = [("中文", "zh"), ("English", "en")]
FEEDBACK_CHOICES = [("每题答完就看评分", "each"), ("结束时统一看评分", "end")]
BAND_CLASS = {"流畅": "b4", "基本": "b3", "卡顿": "b2", "不会": "b1"}
TOPIC_LABEL = {"ksanallm": "KsanaLLM", "paged_attention": "PagedAttention", "flash_attention": "FlashAttention",
               "kv_cache": "KV Cache", "continuous_batching": "Continuous Batching", "parallelism": "并行（TP/PP）",
               "speculative_decoding": "投机解码", "memory_bound": "访存瓶颈", "serving": "推理服务", "vllm_practice": "vLLM 实践",
               "chunked_prefill": "Chunked Prefill", "pd_disaggregation": "PD 分离", "long_context": "长上下文",
               "quantization": "量化", "cuda_graph": "CUDA Graph", "intro": "自我介绍", "project": "项目", "reverse": "反问",
               "motivation": "动机"}
_PUNCT = frozenset(string.punctuation)
REUSE_WINDOW_S = 120  # an untouched session this young is reused on page load instead of opening another
ANSWER_HINT = "在这里回答（Ctrl+Enter 发送）。也可以输入命令：/hint /skip /harder /harder ksana /rate 基本 /end /help"

# ----------------------------------------------------------------------------------- streaming

DRAFT_EVERY_S = 0.06  # at most this often a streamed question is re-sent to the browser


def newest_drafts(drafts: queue.Queue):
    """The texts put on ``drafts`` until ``None``, skipping any superseded while the browser was being updated."""
    while True:
        text = drafts.get()
        if text is None:
            return
        time.sleep(DRAFT_EVERY_S)  # let a few more pieces arrive
        while True:
            try:
                newer = drafts.get_nowait()
            except queue.Empty:
                break
            if newer is None:
                yield text
                return
            text = newer
        yield text


# ----------------------------------------------------------------------------------- formatting


def esc(text: object) -> str:
    """Text inside HTML we build (cards, panel, report)."""
    return html.escape(str(text or ""), quote=True)


def esc_inline(text: object) -> str:
    """Candidate text inside HTML that a Markdown renderer also sees: one line, and every ASCII punctuation
    character as an entity, so it can be neither a tag, a link, an image, an autolink, emphasis nor LaTeX."""
    flat = " ".join(str(text or "").split())
    return "".join(f"&#{ord(c)};" if c in _PUNCT else c for c in flat)


def esc_candidate(text: object) -> str:
    """A candidate's message as a chat bubble: shown verbatim as text (line breaks and indentation kept)."""
    lines = []
    for line in str(text or "").replace("\r\n", "\n").split("\n"):
        body = line.lstrip(" \t")
        lead = len(line) - len(body)
        lines.append("&nbsp;" * lead + "".join(f"&#{ord(c)};" if c in _PUNCT else c for c in body))
    return "\n".join(lines) or "&nbsp;"


def esc_bot(text: object) -> str:
    """Interviewer text: Markdown allowed, raw HTML and remote images not."""
    return html.escape(str(text or ""), quote=False).replace("![", "!&#91;")


def _lines(text: object) -> str:
    """Escaped multi-line text for inside an HTML block (no raw newlines: a blank line would end the block)."""
    return "<br>".join(esc(line) for line in str(text or "").strip().splitlines())


def topic_label(topic: object) -> str:
    return TOPIC_LABEL.get(str(topic or ""), str(topic or ""))


def citations_block(cites: list[dict] | None) -> str:
    """Collapsible '来自笔记：file § heading' under a question."""
    cites = [c for c in (cites or []) if isinstance(c, dict) and c.get("source")]
    if not cites:
        return ""
    first = f"{cites[0]['source']} § {cites[0].get('heading', '')}"
    more = f"（共 {len(cites)} 处）" if len(cites) > 1 else ""
    items = "".join(f"<li>来自笔记：{esc(c['source'])} § {esc(c.get('heading', ''))}</li>" for c in cites)
    return f'<details class="cites"><summary>来自笔记：{esc(first)}{more}</summary><ul>{items}</ul></details>'


def grade_card(grade: dict, references: list[tuple[str, str]] | None = None) -> str:
    """The grade of one answer as an HTML card (one line: it sits inside a Markdown-rendered bubble)."""
    band, score = grade.get("band", ""), grade.get("score", 0)
    meta = f"{grade.get('grader', '')} · 置信度 {float(grade.get('confidence', 0)):.2f}"
    if grade.get("hint_deduction"):
        meta += f" · 提示扣 {grade['hint_deduction']} 分"
    if "over_time" in (grade.get("flags") or []):
        meta += " · 超时"
    parts = [f'<div class="grade-card {BAND_CLASS.get(band, "")}">',
             f'<div class="g-head"><span class="g-band">{esc(band)}</span> <b>{score}</b> 分'
             f' <span class="g-meta">{esc(meta)}</span></div>']
    covered, missed = [], []
    for p in grade.get("points") or []:
        quote = f' <q>{esc_inline(p["evidence"][:160])}</q>' if p.get("evidence") else ""
        if p.get("covered", 0) >= 0.75:
            covered.append(f"<li><i class='mk ok'>✓</i> {esc(p.get('point'))}{quote}</li>")
        else:
            mark = "<i class='mk part'>△</i>" if p.get("covered", 0) > 0 else "<i class='mk miss'>✗</i>"
            note = f' <span class="g-note">→ {esc(p["note"])}</span>' if p.get("note") else ""
            missed.append(f"<li>{mark} {esc(p.get('point'))}{quote}{note}</li>")
    if covered:
        parts.append(f'<div class="g-sec">答到的要点</div><ul class="g-list">{"".join(covered)}</ul>')
    if missed:
        parts.append(f'<div class="g-sec">漏掉或不完整</div><ul class="g-list">{"".join(missed)}</ul>')
    wrong = grade.get("misconceptions") or []
    if wrong:
        items = "".join(f"<li><i class='mk miss'>⚠</i> {esc(m.get('claim'))}"
                        + (f" <q>{esc_inline(m['evidence'][:160])}</q>" if m.get("evidence") else "")
                        + f"<br>正确：{esc(m.get('correction'))}（{esc(m.get('source'))}）</li>" for m in wrong)
        parts.append(f'<div class="g-sec">错误说法</div><ul class="g-list">{items}</ul>')
    if grade.get("feedback"):
        parts.append(f'<div class="g-feedback">{_lines(grade["feedback"])}</div>')
    if grade.get("notice"):
        parts.append(f'<div class="g-notice">⚠ {esc(grade["notice"])}</div>')
    notes = [f"{c.get('source')} § {c.get('heading')}" for c in grade.get("citations") or [] if c.get("source")]
    notes += [p["note"] for p in grade.get("points") or [] if p.get("covered", 0) < 0.75 and p.get("note")]
    notes = list(dict.fromkeys(notes))
    if notes:
        parts.append(f'<div class="g-sec">回看笔记</div><ul class="g-list">{"".join(f"<li>{esc(n)}</li>" for n in notes)}</ul>')
    for label, text in references or []:
        if text and text.strip():
            parts.append(f'<details class="g-ref"><summary>{esc(label)}</summary><div>{_lines(text)}</div></details>')
    parts.append("</div>")
    return "".join(parts)


def _references(turns: list[dict], indexes: list[int]) -> list[tuple[str, str]]:
    refs = []
    for i in indexes:
        t = turns[i]
        label = "参考答案" if t.get("kind") == "main" else "参考要点"
        refs.append((f"{label}：{t.get('question', '')[:40]}", t.get("reference_answer", "")))
    return refs


def closed_references(state: dict) -> dict[int, list[tuple[str, str]]]:
    """For each grade message (by index), the reference answers it may show: those of the turns whose
    question block has closed (the interviewer moved to a new main question or ended) after it."""
    messages, turns = state.get("messages") or [], state.get("turns") or []
    out: dict[int, list[tuple[str, str]]] = {}
    ptr = block = 0
    anchor: int | None = None
    last_user: Any = None
    for i, m in enumerate(messages):
        if m.get("role") == "user":
            last_user = parse_command(str(m.get("content", "")))
            continue
        kind = m.get("kind")
        if kind == "grade":
            k = next((j for j in range(ptr, len(turns)) if turns[j].get("grade") == m.get("grade")), None)
            if k is not None:
                ptr, anchor = k + 1, i
        elif kind == "notice" and last_user is not None and last_user.name == "skip" and ptr < len(turns) \
                and "skipped" in (turns[ptr].get("grade", {}).get("flags") or []):
            ptr, anchor = ptr + 1, i
        elif kind in ("main", "summary"):
            if anchor is not None and ptr > block:
                out[anchor] = _references(turns, list(range(block, ptr)))
            block, anchor = ptr, None
        last_user = None
    return out


def bot_bubble(m: dict, refs: list[tuple[str, str]] | None = None) -> str:
    kind = m.get("kind")
    text = str(m.get("content", ""))
    if kind == "grade" and isinstance(m.get("grade"), dict):
        return grade_card(m["grade"], refs)
    if kind == "hint":
        return '<span class="q-tag hint">提示</span> ' + esc_bot(text)
    if kind == "summary":
        return '<span class="q-tag end">结束</span> ' + esc_bot(text)
    body = esc_bot(text)
    if kind == "notice" and refs:
        body += "\n\n" + "".join(f'<details class="g-ref"><summary>{esc(label)}</summary><div>{_lines(ref)}</div></details>'
                                 for label, ref in refs if ref)
    if kind == "follow_up":
        tag = f"追问 · 难度 {m.get('difficulty') or '?'}"
        if m.get("topic"):
            tag += f" · {topic_label(m['topic'])}"
        body = f'<span class="q-tag">{esc(tag)}</span> ' + body
    cites = citations_block(m.get("citations"))
    return body + ("\n\n" + cites if cites else "")


def chat_history(state: dict) -> list[dict]:
    """The session's messages as Chatbot messages (candidate text escaped, grades as cards)."""
    refs = closed_references(state)
    out = []
    for i, m in enumerate(state.get("messages") or []):
        if m.get("role") == "user":
            out.append({"role": "user", "content": esc_candidate(m.get("content", ""))})
        else:
            out.append({"role": "assistant", "content": bot_bubble(m, refs.get(i))})
    return out


def _mean(values: list[int]) -> int:
    return int(round(sum(values) / len(values))) if values else 0


def score_bars(values: dict[str, int], labels: dict[str, str] | None = None) -> str:
    """Horizontal bars (CSS, so they shrink with the window)."""
    labels = labels or {}
    rows = []
    for key, v in values.items():
        band = "b4" if v >= 85 else "b3" if v >= 60 else "b2" if v >= 30 else "b1"
        rows.append(f'<div class="bar-row"><span class="bar-label">{esc(labels.get(key, key))}</span>'
                    f'<span class="bar-track"><i class="{band}" style="width:{max(0, min(100, int(v)))}%"></i></span>'
                    f'<span class="bar-value">{int(v)}</span></div>')
    return '<div class="bars">' + "".join(rows) + "</div>"


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def stage_panel(state: dict, plan, bank: dict, feedback: str, now: float) -> str:
    """Stage, progress through the script, checklist, a live answer timer and running scores."""
    lang = state.get("lang", "zh")
    si = min(state.get("stage_i", 0), len(plan.stages) - 1)
    finished = bool(state.get("finished"))
    current = state.get("current") or {}
    done_before = sum(len(s.questions) for s in plan.stages[:si])
    q_n = max(1, min(state.get("q_i", 0), len(plan.stages[si].questions)))
    rows = []
    for i, st in enumerate(plan.stages):
        cls = "done" if finished or i < si else "now" if i == si else "todo"
        count = f"{q_n}/{len(st.questions)}" if cls == "now" else f"{len(st.questions)} 题"
        rows.append(f'<li class="{cls}"><span>{esc(st.title.get(lang))}</span><span class="cnt">{count}</span></li>')
    parts = [f'<div class="panel-title">{esc(plan.title.get(lang))}</div>', f'<ol class="stages">{"".join(rows)}</ol>']
    if finished:
        summary = state.get("summary") or {}
        parts.append(f'<div class="panel-now">面试已结束 · 总分 <b>{summary.get("score", "–")}</b>（{esc(summary.get("band", ""))}）</div>')
    else:
        parts.append(f'<div class="panel-now">当前：{esc(plan.stages[si].title.get(lang))}<br>'
                     f'第 {q_n}/{len(plan.stages[si].questions)} 题 · 全程第 {done_before + q_n}/{plan.main_count} 道主问题</div>')
        if current:
            q = bank.get(current.get("question_id") or "")
            budget = q.time_budget_s if current.get("kind") == "main" and q is not None else plan.answer_budget_s
            elapsed = max(0.0, now - float(current.get("asked_at") or now))
            kind = "主问题" if current.get("kind") == "main" else "追问"
            hints = len(current.get("hints") or [])
            parts.append(
                f'<div class="answer-timer{" over" if elapsed > budget else ""}" data-elapsed="{elapsed:.1f}" '
                f'data-budget="{budget}" data-key="{esc(current.get("asked_at"))}">'
                f'<div>本题用时（{kind}）<span class="t">{_fmt_s(elapsed)}</span> / {_fmt_s(budget)}'
                + (f" · 已用提示 {hints}" if hints else "") + "</div>"
                f'<div class="tbar"><i style="width:{min(100, elapsed / budget * 100):.0f}%"></i></div></div>')
        checklist = plan.stages[si].checklist
        if checklist:
            parts.append('<div class="panel-sec">本阶段要讲到</div><ul class="check">'
                         + "".join(f"<li>{esc(c)}</li>" for c in checklist) + "</ul>")
    turns = state.get("turns") or []
    if turns and (feedback == "each" or finished):
        by_stage: dict[str, list[int]] = {}
        for t in turns:
            by_stage.setdefault(t["stage"], []).append(t["grade"]["score"])
        parts.append('<div class="panel-sec">分阶段得分（已答 %d 题）</div>' % len(turns)
                     + score_bars({k: _mean(v) for k, v in by_stage.items()}, STAGE_NAMES))
    elif turns:
        parts.append(f'<div class="panel-sec">已答 {len(turns)} 题 · 评分在结束时显示</div>')
    return '<div class="panel">' + "".join(parts) + "</div>"


def report_html(t) -> str:
    """The final report: totals, charts by stage and topic, study plan, and every turn with its grade."""
    s = t.summary
    weak = "、".join(topic_label(w) for w in s.weak_topics) or "无"
    parts = [f'<div class="report"><h3>面试报告 · 总分 {s.score}（{esc(s.band)}）</h3>',
             f"<p>作答 {s.answered} 题 · 模型：{esc(t.model)} · 薄弱话题：{esc(weak)}</p>",
             '<div class="charts"><div><h4>分阶段得分</h4>' + score_bars(s.stages, STAGE_NAMES) + "</div>",
             "<div><h4>分话题得分</h4>" + score_bars(s.topics, {k: topic_label(k) for k in s.topics}) + "</div></div>",
             "<h4>复习计划（卡顿和不会的题，回去看这些笔记）</h4>"]
    if s.study_plan:
        parts.append("<ol class='plan'>" + "".join(
            f"<li><span class='g-band {BAND_CLASS.get(i.band, '')}'>{esc(i.band)} {i.score}</span> {esc(i.question)}"
            + (f"<br><span class='g-note'>回看：{esc('；'.join(i.notes))}</span>" if i.notes else "") + "</li>"
            for i in s.study_plan) + "</ol>")
    else:
        parts.append("<p>没有卡顿或不会的题。</p>")
    if s.self_vs_grader:
        parts.append("<h4>自评 vs 评分</h4><table class='svg-table'><tr><th>题目</th><th>自评</th><th>评分</th></tr>"
                     + "".join(f"<tr><td>{esc(r['question'][:60])}</td><td>{esc(r['self'])}</td><td>{esc(r['grader'])}</td></tr>"
                               for r in s.self_vs_grader) + "</table>")
    parts.append("<h4>逐题回顾</h4>")
    for n, turn in enumerate(t.turns, 1):
        g = turn.grade.model_dump()
        label = "参考答案" if turn.kind == "main" else "参考要点"
        parts.append(f"<details class='turn'><summary>{n}. [{esc(g['band'])} {g['score']}] {esc(turn.question)}</summary>"
                     f"<blockquote>{esc(turn.answer or '（未作答）')}</blockquote>"
                     + grade_card(g, [(label, turn.reference_answer)]) + "</details>")
    parts.append("</div>")
    return "".join(parts)


def finding_rows(findings) -> list[list]:
    return [[f.file, f.line, VERDICT_ZH.get(f.verdict, f.verdict), f.claim, f.correction, f.source] for f in findings]


# ----------------------------------------------------------------------------------- handlers


def browser_secret(data_dir: Path) -> str:
    """The key that encrypts the session id in the browser; kept on disk so an app restart can read it back."""
    path = data_dir / "ui-secret"
    try:
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 16:
            return value
    except OSError:
        pass
    value = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)
    return value


def status_html(text: str, kind: str = "info") -> str:
    return f'<div class="status {kind}">{esc(text)}</div>' if text else ""


class Handlers:
    """Event handlers. Each returns values for the outputs listed next to it in :func:`build_ui`."""

    N_VIEW = 10  # sid, browser sid, chat, panel, report box, report, 3 downloads, status

    def __init__(self, services) -> None:
        self.services = services
        self._start_lock = threading.Lock()

    @property
    def iv(self):
        return self.services.interviewer

    @property
    def settings(self):
        return self.services.settings

    # -- helpers

    def _plain(self, exc: BaseException) -> str:
        """An error in plain words, without secrets."""
        from interviewer.models import describe_model_error

        text = str(exc) or type(exc).__name__
        if type(exc).__module__.startswith("openai") or type(exc).__name__ == "ModelRequestsBlocked":
            text = describe_model_error(exc)
        for secret in self.settings.secrets():
            text = text.replace(secret, "***")
        return text[:300]

    def _fail(self, message: str, extra: int = 0) -> list:
        """Outputs that change nothing but the status line (the typed answer stays in its box)."""
        gr.Warning(message)
        return [gr.skip()] * (self.N_VIEW - 1) + [status_html(message, "error")] + [gr.skip()] * extra

    def _exports(self, state: dict) -> list[str]:
        t = build_transcript(state)
        paths = []
        for fmt in EXPORT_FORMATS:
            path = safe_export_path(self.settings.exports_dir, f"interview-{t.session_id[:12]}.{fmt}")
            path.write_text(render(t, fmt), encoding="utf-8")
            paths.append(str(path))
        return paths

    def view(self, sid: str, status: str = "", show_report: bool = False) -> list:
        state = self.iv.state(sid)
        plan = self.iv.plan(state["plan_id"])
        report, files = "", [None, None, None]
        if state.get("finished") or show_report:
            report = report_html(build_transcript(state))
            files = self._exports(state)
        visible = bool(state.get("finished") or show_report)
        return [sid, sid, chat_history(state), stage_panel(state, plan, self.iv.bank, self.settings.feedback, time.time()),
                gr.update(visible=visible), report, *files, status_html(status)]

    def _fresh(self, sid: str, plan: str | None = None) -> bool:
        """A session opened moments ago that nobody has answered in yet, in the plan and current language: reusing
        it instead of opening another keeps refreshes from piling up empty sessions (and its timer is still right)."""
        info = self.iv.store.get(sid) if sid else None
        if info is None or info.status != "active" or info.plan != (plan or self.settings.plan) or info.lang != self.settings.lang:
            return False
        if time.time() - info.created > REUSE_WINDOW_S:
            return False
        try:
            state = self.iv.state(sid)
        except KeyError:
            return False
        return not state.get("inputs") and not state.get("finished")

    def _start(self) -> str:
        with self._start_lock:
            for info in self.iv.store.list(limit=5):  # a refresh before the browser stored the id
                if self._fresh(info.id):
                    return info.id
            return self.iv.start(lang=self.settings.lang).session_id

    # -- session

    def restore(self, stored: Any, draft: Any = "") -> list:
        """Page load: resume the browser's session, or open one (never a second untouched one); put back
        an answer that was typed but not sent."""
        sid = stored if isinstance(stored, str) else ""
        box = draft if isinstance(draft, str) and draft.strip() else gr.skip()
        try:
            if sid and self.iv.exists(sid):
                self.iv.resume(sid)
                return [*self.view(sid, "已恢复上次的面试。"), box]
            return [*self.view(self._start()), box]
        except Exception as exc:  # noqa: BLE001 - shown to the user in plain words
            log.warning("restore failed: %s", self._plain(exc))
            return self._fail(f"无法打开面试：{self._plain(exc)}", 1)

    @staticmethod
    def echo(history: list | None, text: str):
        """Show the candidate's message at once, before the interviewer has answered."""
        if not (text or "").strip():
            return gr.skip()
        return [*(history or []), {"role": "user", "content": esc_candidate(text)}]

    def plan_choices(self) -> list[tuple[str, str]]:
        from interviewer.knowledge.bank import plan_ids

        choices = []
        for pid in plan_ids():
            try:
                choices.append((self.iv.plan(pid).title.get(self.settings.lang), pid))
            except Exception as exc:  # noqa: BLE001 - a broken plan file is left out, not fatal
                log.warning("plan %s skipped: %s", pid, exc)
        return choices

    def new_session(self, sid: str = "", plan: str | None = None) -> list:
        plan = plan or self.settings.plan
        try:
            if self._fresh(sid, plan):
                return self.view(sid, "当前面试还没有作答，直接从这里开始。")
            with self._start_lock:
                new = self.iv.start(plan, lang=self.settings.lang).session_id
            return self.view(new, "已开始新的面试。")
        except Exception as exc:  # noqa: BLE001
            log.warning("start failed: %s", self._plain(exc))
            return self._fail(f"无法开始面试：{self._plain(exc)}")

    def resume(self, sid: str) -> list:
        if not sid or not self.iv.exists(sid):
            return self._fail("请先在列表里选一场面试。")
        try:
            self.iv.resume(sid)
            return self.view(sid, f"已切换到面试 {sid[:8]}。")
        except Exception as exc:  # noqa: BLE001
            return self._fail(f"无法继续这场面试：{self._plain(exc)}")

    def chat_only(self, sid: str):
        return chat_history(self.iv.state(sid)) if sid and self.iv.exists(sid) else gr.skip()

    def list_sessions(self):
        infos = self.iv.store.list()
        return gr.update(choices=[(i.label(), i.id) for i in infos], value=infos[0].id if infos else None)

    # -- interview

    def _no_session(self, sid: str, extra: int = 0) -> list | None:
        """The failure outputs when ``sid`` names no session, else None."""
        if not sid or not self.iv.exists(sid):
            return self._fail("没有进行中的面试：请刷新页面或在「会话」页开始新面试。", extra)
        return None

    def _send_failed(self, exc: BaseException, extra: int = 0) -> list:
        log.warning("send failed: %s", self._plain(exc))
        return self._fail(f"这条消息没有处理成功：{self._plain(exc)}。输入框里的内容还在，可以稍后再发。", extra)

    def _send(self, sid: str, text: str, extra: int = 0) -> list | None:
        """Send text; None on success, else the failure outputs."""
        if missing := self._no_session(sid, extra):
            return missing
        try:
            self.iv.send(sid, text)
        except Exception as exc:  # noqa: BLE001
            return self._send_failed(exc, extra)
        return None

    def send(self, sid: str, text: str):
        """Send an answer. With a model, the next question is shown as the model writes it (the turn runs in a
        thread that finishes even if the page goes away), then the whole view is rendered from the engine."""
        if not (text or "").strip():
            yield self._fail("请先输入回答（或用下面的按钮：提示、跳过、更难）。", 1)
            return
        if missing := self._no_session(sid, 1):
            yield missing
            return
        drafts: queue.Queue[str | None] = queue.Queue()
        outcome: dict[str, BaseException] = {}

        def turn() -> None:
            try:
                self.iv.send(sid, text, on_text=drafts.put)
            except Exception as exc:  # noqa: BLE001 - reported below in plain words
                outcome["error"] = exc
            finally:
                drafts.put(None)

        threading.Thread(target=turn, name=f"turn-{sid[:8]}").start()  # not a daemon: a turn under way finishes on exit
        shown: list[dict] | None = None
        for draft in newest_drafts(drafts):
            if shown is None:  # the chat as checkpointed so far: the answer and, when shown each turn, its grade
                shown = chat_history(self.iv.state(sid))
            bubble = {"role": "assistant", "content": esc_bot(draft) + ' <span class="typing">▍</span>'}
            yield [gr.skip(), gr.skip(), [*shown, bubble]] + [gr.skip()] * (self.N_VIEW - 2)
        yield self._send_failed(outcome["error"], 1) if "error" in outcome else [*self.view(sid), ""]

    def command(self, command: str):
        def run(sid: str) -> list:
            return self._send(sid, command) or self.view(sid)

        run.__name__ = "command_" + re.sub(r"\W+", "_", command.strip("/"))
        return run

    def rate(self, sid: str, rating: str) -> list:
        if rating not in RATINGS:
            return self._fail("请选择 流畅 / 基本 / 卡顿 / 不会。", 1)
        failed = self._send(sid, f"/rate {rating}", 1)
        return failed if failed else [*self.view(sid), None]

    def export(self, sid: str) -> list:
        if not sid or not self.iv.exists(sid):
            return self._fail("没有可以导出的面试。")
        try:
            return self.view(sid, "报告已生成，可以下载 JSON / Markdown / HTML。", show_report=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("export failed: %s", self._plain(exc))
            return self._fail(f"导出失败：{self._plain(exc)}")

    # -- settings

    def settings_values(self) -> list:
        s = self.settings
        return [MODE_OFFLINE if s.offline else MODE_OPENAI, "" if s.model == "offline" else s.model, s.base_url,
                gr.update(value="", placeholder="已设置（不显示）" if s.api_key else "sk-…（本机服务可留空）"),
                s.lang, s.feedback, "\n".join(str(p) for p in s.notes_dirs)]

    def _apply(self, new, model) -> None:
        try:
            new.save()
        except OSError as exc:  # the choice still applies to this run
            log.warning("settings not saved: %s", exc)
        self.services.settings = new
        self.services.model = model
        self.services.retriever.settings = new
        self.iv.reconfigure(new, model)

    def apply_settings(self, mode: str, model: str, base_url: str, api_key: str, lang: str, feedback: str) -> list:
        from interviewer.models import build_chat_model

        changes: dict[str, Any] = {"lang": "en" if lang == "en" else "zh", "feedback": "end" if feedback == "end" else "each"}
        if mode == MODE_OPENAI:
            if not (model or "").strip():
                return [status_html("请填写模型名称（例如 deepseek-chat、qwen-plus、gpt-4o-mini）。", "error"), gr.skip()]
            changes |= {"model": model.strip(), "base_url": (base_url or "").strip()}
            if (api_key or "").strip():
                changes["api_key"] = api_key.strip()
        else:
            changes["model"] = "offline"
        try:
            new = self.settings.with_(**changes)
            chat_model = build_chat_model(new)
        except Exception as exc:  # noqa: BLE001
            return [status_html(f"设置没有生效：{self._plain(exc)}", "error"), gr.update(value="")]
        self._apply(new, chat_model)
        where = "离线评分" if new.offline else f"{new.model} @ {new.base_url or '默认地址'}"
        if not new.offline and not new.api_key and not new.base_url:
            where += "（缺少 API key）"
        words = (f"已应用并保存：{where}；新面试的语言：{'中文' if new.lang == 'zh' else 'English'}；"
                 f"评分显示：{'每题之后' if new.feedback == 'each' else '结束时'}。")
        if new.api_key and not new.offline:
            words += "API key 只保存在内存里，重启后需要重新填写（或写进 .env 的 OPENAI_API_KEY）。"
        return [status_html(words), gr.update(value="", placeholder="已设置（不显示）" if new.api_key else "sk-…（本机服务可留空）")]

    def reindex(self, folders: str, progress=gr.Progress()) -> str:
        from interviewer.search.index import build_index

        dirs = [Path(p.strip()).expanduser() for p in re.split(r"[\n;]", folders or "") if p.strip()]
        missing = [str(d) for d in dirs if not d.is_dir()]
        if missing:
            return status_html(f"找不到这些文件夹：{'、'.join(missing)}", "error")
        try:
            new = self.settings.with_(notes_dirs=tuple(dirs))

            def tick(done: int, total: int, source: str) -> None:
                progress(done / total if total else 1.0, desc=f"嵌入笔记 {done}/{total} {source[:30]}")

            report = build_index(new, tick, self.services.retriever.collection)
            self.services.retriever.refresh(force=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("reindex failed: %s", self._plain(exc))
            return status_html(f"索引没有建成：{self._plain(exc)}", "error")
        self._apply(new, self.services.model)
        words = (f"索引完成：共 {report.total} 段，新增 {report.added}，更新 {report.updated}，删除 {report.removed}，"
                 f"用时 {report.seconds:.1f} 秒。")
        if report.skipped:
            words += " 跳过：" + "；".join(report.skipped[:5])
        return status_html(words)

    # -- audit

    def audit(self, paths: str) -> list:
        items = [Path(p.strip()).expanduser() for p in re.split(r"[\n;]", paths or "") if p.strip()]
        if not items:
            return [gr.skip(), status_html("请填写笔记文件或文件夹的路径。", "error")]
        try:
            findings, errors = audit_paths(items)
        except Exception as exc:  # noqa: BLE001
            return [gr.skip(), status_html(f"核查失败：{self._plain(exc)}", "error")]
        problems = sum(1 for f in findings if f.verdict != "confirmed")
        words = f"找到 {len(findings)} 处已登记的说法，其中 {problems} 处需要改正或补出处。" if findings else \
            "没有找到事实登记表里的说法。"
        if errors:
            words += " 无法读取：" + "；".join(errors[:5])
        return [finding_rows(findings), status_html(words, "error" if errors and not findings else "info")]


# ----------------------------------------------------------------------------------- layout

CSS = """
.gradio-container { max-width: 1320px !important; }
.gradio-container, .gradio-container * { font-family: 'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'PingFang SC',
  'Microsoft YaHei', 'Source Han Sans SC', ui-sans-serif, system-ui, sans-serif; }
#app-title h2 { margin: 0 0 .2em 0; font-size: 1.25em; }
#chatbot .q-tag { display: inline-block; font-size: .78em; padding: 0 .45em; border-radius: .6em; background: #e8eefc;
  color: #1c3f95; margin-right: .3em; }
#chatbot details.cites summary, #chatbot details.g-ref summary { cursor: pointer; color: #555; font-size: .9em; }
#chatbot details.cites ul { margin: .2em 0 0 1.2em; font-size: .88em; color: #444; }
.grade-card { border-left: 4px solid #999; padding: .35em .6em; background: #fafafa; border-radius: 4px; }
.grade-card.b4 { border-color: #2e7d32; } .grade-card.b3 { border-color: #1565c0; }
.grade-card.b2 { border-color: #ef6c00; } .grade-card.b1 { border-color: #c62828; }
.g-head { font-size: 1.02em; } .g-meta { color: #777; font-size: .82em; }
.g-band { display: inline-block; padding: 0 .4em; border-radius: .4em; color: #fff; background: #777; }
.b4 .g-band, .g-band.b4 { background: #2e7d32; } .b3 .g-band, .g-band.b3 { background: #1565c0; }
.b2 .g-band, .g-band.b2 { background: #ef6c00; } .b1 .g-band, .g-band.b1 { background: #c62828; }
.g-sec { font-weight: 600; margin-top: .35em; font-size: .9em; }
.g-list { margin: .1em 0 0 .3em; padding: 0; font-size: .9em; list-style: none; } .g-list q { color: #555; }
.g-note { color: #666; font-size: .88em; } .g-feedback { margin-top: .35em; } .g-notice { color: #b26a00; }
#stage-panel .panel { font-size: .92em; line-height: 1.45; }
#stage-panel .panel-title { font-weight: 600; margin-bottom: .3em; }
#stage-panel ol.stages { margin: 0 0 .5em 1.2em; padding: 0; }
#stage-panel ol.stages li { display: flex; justify-content: space-between; gap: .5em; color: #888; }
#stage-panel ol.stages li.now { color: #1c3f95; font-weight: 600; } #stage-panel ol.stages li.done { color: #2e7d32; }
#stage-panel .cnt { white-space: nowrap; font-size: .9em; }
#stage-panel .panel-now { background: #f2f5fb; padding: .35em .5em; border-radius: 6px; margin: .3em 0; }
#stage-panel .panel-sec { font-weight: 600; margin-top: .6em; }
#stage-panel ul.check { margin: .2em 0 0 1.2em; padding: 0; }
.answer-timer { margin: .4em 0; } .answer-timer .t { font-variant-numeric: tabular-nums; font-weight: 600; }
.answer-timer .tbar { height: 6px; background: #e3e7ee; border-radius: 3px; overflow: hidden; }
.answer-timer .tbar i { display: block; height: 100%; background: #1565c0; }
.answer-timer.over .t { color: #c62828; } .answer-timer.over .tbar i { background: #c62828; }
.bars { margin: .2em 0; } .bar-row { display: flex; align-items: center; gap: .4em; margin: .15em 0; font-size: .9em; }
.bar-label { flex: 0 0 6.5em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar-track { flex: 1 1 auto; height: .8em; background: #eceff3; border-radius: .4em; overflow: hidden; min-width: 3em; }
.bar-track i { display: block; height: 100%; } .bar-value { flex: 0 0 2em; text-align: right; }
.bar-track i.b4 { background: #2e7d32; } .bar-track i.b3 { background: #1565c0; }
.bar-track i.b2 { background: #ef6c00; } .bar-track i.b1 { background: #c62828; }
.report .charts { display: flex; flex-wrap: wrap; gap: 1.5em; } .report .charts > div { flex: 1 1 260px; }
.report details.turn { border-top: 1px solid #e5e5e5; padding: .3em 0; } .report blockquote { white-space: pre-wrap; }
.report .svg-table td, .report .svg-table th { padding: .1em .5em; border-bottom: 1px solid #eee; }
.status { padding: .3em .6em; border-radius: 4px; background: #eef5ee; font-size: .92em; }
.status.error { background: #fdecea; color: #8a1c1c; }
#command-row button { min-width: 0; }
#chatbot .typing { color: #1565c0; animation: blink 1s steps(2, start) infinite; }
@keyframes blink { to { visibility: hidden; } }
#chatbot .top-panel > button:not(:last-of-type) { display: none; }  /* the toolbar's "clear": keep only copy-all */
@media (min-width: 641px) { #harder-ksana { flex-grow: 2 !important; white-space: nowrap; } }
@media (max-width: 640px) {
  .gradio-container { padding: 4px !important; }
  #chatbot { height: 58vh !important; }
  #command-row { flex-wrap: wrap; }
  #command-row > * { flex: 1 1 30% !important; min-width: 0 !important; }
  .bar-label { flex-basis: 5em; }
}
"""

JS = """
() => {
  const fmt = (s) => { s = Math.max(0, Math.floor(s)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };
  const seen = new WeakMap();
  const tick = () => {
    document.querySelectorAll(".answer-timer").forEach((el) => {
      const key = el.dataset.key || "";
      let rec = seen.get(el);
      if (!rec || rec.key !== key || rec.elapsed !== el.dataset.elapsed) {
        rec = { key, elapsed: el.dataset.elapsed, t: performance.now() };
        seen.set(el, rec);
      }
      const e = parseFloat(el.dataset.elapsed || "0") + (performance.now() - rec.t) / 1000;
      const b = parseFloat(el.dataset.budget || "120");
      const t = el.querySelector(".t"); if (t) t.textContent = fmt(e);
      const bar = el.querySelector(".tbar i"); if (bar) bar.style.width = Math.min(100, e / b * 100) + "%";
      el.classList.toggle("over", e > b);
    });
  };
  tick();
  setInterval(tick, 500);
  let reportShown = false;
  setInterval(() => {
    const box = document.querySelector("#report-box");
    const shown = !!(box && box.offsetParent !== null && box.offsetHeight > 0);
    if (shown && !reportShown) box.scrollIntoView({ behavior: "smooth", block: "start" });
    reportShown = shown;
  }, 500);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing && ev.target.closest && ev.target.closest("#answer-box")) {
      ev.preventDefault();
      const b = document.querySelector("#send"); if (b) b.click();
    }
  });
}
"""

COMMAND_BUTTONS = (("更难的追问 · KsanaLLM", "harder-ksana", "/harder ksana", "harder_ksana"),
                   ("更难", "harder", "/harder", "harder"),
                   ("提示", "hint", "/hint", "hint"),
                   ("跳过", "skip", "/skip", "skip"),
                   ("结束面试", "end", "/end", "end"))


def theme():
    fonts = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Soft(font=fonts, font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


def build_ui(services) -> gr.Blocks:
    h = Handlers(services)
    settings = services.settings
    with gr.Blocks(title="AI 模拟面试 · 大模型推理优化", analytics_enabled=False) as demo:
        secret = browser_secret(settings.data_dir)
        browser_sid = gr.BrowserState("", storage_key=STORAGE_KEY, secret=secret)
        draft = gr.BrowserState("", storage_key=STORAGE_KEY + "-draft", secret=secret)  # typed, not yet sent
        gr.Markdown("## AI 模拟面试 · 大模型推理优化", elem_id="app-title")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("面试", id="interview", elem_id="tab-interview"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        chat = gr.Chatbot(elem_id="chatbot", show_label=False, height="50vh", min_height=260,
                                          latex_delimiters=[], allow_tags=False, sanitize_html=True, buttons=["copy_all"],
                                          feedback_options=None, group_consecutive_messages=False,
                                          placeholder="正在准备面试……")
                        answer = gr.Textbox(elem_id="answer-box", show_label=False, lines=3, max_lines=12, placeholder=ANSWER_HINT)
                        with gr.Row(elem_id="command-row"):
                            send_btn = gr.Button("发送", variant="primary", elem_id="send", size="md", min_width=64)
                            buttons = {api: gr.Button(label, elem_id=eid, size="md", min_width=150 if api == "harder_ksana" else 64)
                                       for label, eid, _cmd, api in COMMAND_BUTTONS}
                        status = gr.HTML("", elem_id="status")
                    with gr.Column(scale=1, min_width=260):
                        panel = gr.HTML("", elem_id="stage-panel")
                        rating = gr.Radio(list(RATINGS), label="给上一题自评", elem_id="self-rating", value=None)
                        export_btn = gr.Button("查看当前报告 / 导出", elem_id="export", size="md")
                with gr.Column(visible=False, elem_id="report-box") as report_box:
                    report = gr.HTML("", elem_id="report")
                    with gr.Row():
                        dl_json = gr.DownloadButton("下载 JSON", elem_id="download-json", size="md")
                        dl_md = gr.DownloadButton("下载 Markdown", elem_id="download-md", size="md")
                        dl_html = gr.DownloadButton("下载 HTML", elem_id="download-html", size="md")
                        new_end = gr.Button("开始新面试", elem_id="new-session-end", variant="primary", size="md")
            with gr.Tab("会话", id="sessions", elem_id="tab-sessions") as sessions_tab:
                sid_box = gr.Textbox(label="当前面试编号", elem_id="session-id", interactive=False)
                sessions = gr.Dropdown(label="过去的面试（最近的在前）", choices=[], elem_id="sessions", interactive=True)
                plan = gr.Dropdown(h.plan_choices(), value=settings.plan, label="新面试用的计划", elem_id="plan", interactive=True)
                with gr.Row():
                    refresh_btn = gr.Button("刷新列表", elem_id="sessions-refresh")
                    resume_btn = gr.Button("继续这场面试", elem_id="resume", variant="primary")
                    new_btn = gr.Button("开始新面试", elem_id="new-session")
            with gr.Tab("设置", id="settings", elem_id="tab-settings"):
                mode = gr.Radio([MODE_OFFLINE, MODE_OPENAI], label="模型", elem_id="model-mode")
                with gr.Row():
                    model_name = gr.Textbox(label="模型名称", placeholder="deepseek-chat / qwen-plus / gpt-4o-mini", elem_id="model-name")
                    base_url = gr.Textbox(label="接口地址（Base URL）", placeholder="https://api.deepseek.com/v1 或 http://127.0.0.1:8000/v1",
                                          elem_id="base-url")
                    api_key = gr.Textbox(label="API key", type="password", elem_id="api-key")
                with gr.Row():
                    lang = gr.Radio(LANG_CHOICES, label="面试语言（新面试生效）", elem_id="lang")
                    feedback = gr.Radio(FEEDBACK_CHOICES, label="评分什么时候显示", elem_id="feedback")
                apply_btn = gr.Button("应用设置", variant="primary", elem_id="apply-settings")
                settings_status = gr.HTML("", elem_id="settings-status")
                notes = gr.Textbox(label="我的笔记文件夹（每行一个；.md / .txt）", lines=2, elem_id="notes-dirs")
                reindex_btn = gr.Button("重新建立笔记索引", elem_id="reindex")
                index_status = gr.HTML("", elem_id="index-status")
            with gr.Tab("笔记核查", id="audit", elem_id="tab-audit"):
                gr.Markdown("检查你自己的笔记里有没有事实登记表中已知错误、有误导或找不到出处的说法。")
                audit_path = gr.Textbox(label="笔记文件或文件夹路径（每行一个）", elem_id="audit-path")
                audit_btn = gr.Button("开始核查", variant="primary", elem_id="audit-run")
                audit_status = gr.HTML("", elem_id="audit-status")
                audit_table = gr.Dataframe(headers=["文件", "行", "结论", "说法", "正确说法", "出处"], elem_id="audit-table",
                                           interactive=False, wrap=True, column_count=6)

        view = [sid_box, browser_sid, chat, panel, report_box, report, dl_json, dl_md, dl_html, status]
        settings_fields = [mode, model_name, base_url, api_key, lang, feedback, notes]

        demo.load(h.restore, [browser_sid, draft], [*view, answer], api_name="restore", api_visibility="private")
        demo.load(h.settings_values, None, settings_fields, api_name="settings_values", api_visibility="private")
        demo.load(h.list_sessions, None, sessions, api_name="list_sessions_on_load", api_visibility="private")

        chat.clear(h.chat_only, [sid_box], [chat], api_visibility="private")  # the toolbar's clear: show the session again
        # The draft mirrors the answer box in the browser (typing, clearing after a send, restoring on load);
        # an empty box is stored as " " because BrowserState does not store an empty value.
        answer.change(None, [answer], [draft], js="(text) => text || ' '", queue=False, show_progress="hidden",
                      api_visibility="private", trigger_mode="always_last")
        send_btn.click(h.echo, [chat, answer], [chat], queue=False, show_progress="hidden", api_visibility="private").then(
            h.send, [sid_box, answer], [*view, answer], api_name="send")
        for _label, _eid, cmd, api in COMMAND_BUTTONS:
            buttons[api].click(h.command(cmd), [sid_box], view, api_name=api)
        rating.input(h.rate, [sid_box, rating], [*view, rating], api_name="rate")
        export_btn.click(h.export, [sid_box], view, api_name="export")
        refresh_btn.click(h.list_sessions, None, sessions, api_name="list_sessions")
        sessions_tab.select(h.list_sessions, None, sessions, api_name="sessions_on_tab", api_visibility="private")
        new_btn.click(h.new_session, [sid_box, plan], view, api_name="new_session").then(
            h.list_sessions, None, sessions, api_name="sessions_after_new", api_visibility="private")
        new_end.click(h.new_session, [sid_box, plan], view, api_name="new_session_at_end", api_visibility="private").then(
            h.list_sessions, None, sessions, api_name="sessions_after_new_at_end", api_visibility="private")
        resume_btn.click(h.resume, [sessions], view, api_name="resume")
        apply_btn.click(h.apply_settings, [mode, model_name, base_url, api_key, lang, feedback], [settings_status, api_key],
                        api_name="apply_settings")
        reindex_btn.click(h.reindex, [notes], [index_status], api_name="reindex")
        audit_btn.click(h.audit, [audit_path], [audit_table, audit_status], api_name="audit")
    demo.handlers = h  # for tests
    return demo


def launch(services, **overrides):
    """Serve the UI on settings.host:port (loopback by default; a password is required otherwise)."""
    settings = services.settings
    demo = build_ui(services)
    demo.queue(default_concurrency_limit=4)
    options: dict[str, Any] = dict(
        server_name=settings.host, server_port=settings.port, share=False, ssr_mode=False, show_error=False,
        auth=None if is_loopback(settings.host) else (AUTH_USER, settings.password),
        auth_message="请输入用户名 interviewer 和 INTERVIEWER_PASSWORD 设置的密码。",
        allowed_paths=[str(settings.exports_dir)], theme=theme(), css=CSS, js=JS, footer_links=["api", "gradio"],
    )
    options.update(overrides)
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    block = not options.pop("prevent_thread_lock", False)
    demo.launch(**options, prevent_thread_lock=True)
    # Load the embedder and BM25 once the server is up, not on the first answer (nor before the first page).
    # Not a daemon: a daemon thread still inside native code (the embedder) when the interpreter exits can crash it.
    threading.Thread(target=services.retriever.warm, name="warm-up").start()
    if block:
        demo.block_thread()
    return demo
