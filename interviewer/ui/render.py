"""Pure rendering: a :class:`~interviewer.facade.SessionView` and grades as HTML for the chat, the stage panel
and the report. No Gradio, no engine calls; candidate text is always escaped.
"""

from __future__ import annotations

import html
import string
from typing import Any

from interviewer.bands import css_class
from interviewer.engine.commands import parse_command
from interviewer.facade import SessionView
from interviewer.knowledge.audit import VERDICT_ZH
from interviewer.knowledge.citation import address_of
from interviewer.knowledge.topics import topic_label
from interviewer.messages import short
from interviewer.report.transcript import STAGE_NAMES

_PUNCT = frozenset(string.punctuation)


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


def citations_block(cites: list[dict] | None) -> str:
    """Collapsible '来自笔记：file § heading' under a question."""
    cites = [c for c in (cites or []) if isinstance(c, dict) and c.get("source")]
    if not cites:
        return ""
    first = address_of(cites[0])
    more = f"（共 {len(cites)} 处）" if len(cites) > 1 else ""
    items = "".join(f"<li>来自笔记：{esc(address_of(c))}</li>" for c in cites)
    return f'<details class="cites"><summary>来自笔记：{esc(first)}{more}</summary><ul>{items}</ul></details>'


def grade_card(grade: dict, references: list[tuple[str, str]] | None = None) -> str:
    """The grade of one answer as an HTML card (one line: it sits inside a Markdown-rendered bubble)."""
    band, score = grade.get("band", ""), grade.get("score", 0)
    meta = f"{grade.get('grader', '')} · 置信度 {float(grade.get('confidence', 0)):.2f}"
    if grade.get("hint_deduction"):
        meta += f" · 提示扣 {grade['hint_deduction']} 分"
    if "over_time" in (grade.get("flags") or []):
        meta += " · 超时"
    parts = [f'<div class="grade-card {css_class(band) if band else ""}">',
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
    notes = [address_of(c) for c in grade.get("citations") or [] if c.get("source")]
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
        refs.append((f"{label}（题目：{short(t.get('question', ''))}）", t.get("reference_answer", "")))  # never read as the answer
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
        band = css_class(v)
        rows.append(f'<div class="bar-row"><span class="bar-label">{esc(labels.get(key, key))}</span>'
                    f'<span class="bar-track"><i class="{band}" style="width:{max(0, min(100, int(v)))}%"></i></span>'
                    f'<span class="bar-value">{int(v)}</span></div>')
    return '<div class="bars">' + "".join(rows) + "</div>"


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def stage_panel(v: SessionView, now: float) -> str:
    """Stage, progress through the script, checklist, a live answer timer and running scores."""
    rows = []
    for st in v.stages:
        count = f"{v.question_n}/{st.questions}" if st.status == "now" else f"{st.questions} 题"
        rows.append(f'<li class="{st.status}"><span>{esc(st.title)}</span><span class="cnt">{count}</span></li>')
    parts = [f'<div class="panel-title">{esc(v.plan_title)}</div>', f'<ol class="stages">{"".join(rows)}</ol>']
    stage = v.stages[v.stage_i]
    if v.finished:
        parts.append(f'<div class="panel-now">面试已结束 · 总分 <b>{v.summary.get("score", "–")}</b>（{esc(v.summary.get("band", ""))}）</div>')
    else:
        parts.append(f'<div class="panel-now">当前：{esc(stage.title)}<br>'
                     f'第 {v.question_n}/{stage.questions} 题 · 全程第 {v.main_done_before + v.question_n}/{v.main_count} 道主问题</div>')
        if v.current:
            parts.append(_timer(v, now))
        if stage.checklist:
            parts.append('<div class="panel-sec">本阶段要讲到</div><ul class="check">'
                         + "".join(f"<li>{esc(c)}</li>" for c in stage.checklist) + "</ul>")
    if v.turns and (v.feedback == "each" or v.finished):
        by_stage: dict[str, list[int]] = {}
        for t in v.turns:
            by_stage.setdefault(t["stage"], []).append(t["grade"]["score"])
        parts.append('<div class="panel-sec">分阶段得分（已答 %d 题）</div>' % len(v.turns)
                     + score_bars({k: _mean(x) for k, x in by_stage.items()}, STAGE_NAMES))
    elif v.turns:
        parts.append(f'<div class="panel-sec">已答 {len(v.turns)} 题 · 评分在结束时显示</div>')
    return '<div class="panel">' + "".join(parts) + "</div>"


def _timer(v: SessionView, now: float) -> str:
    c = v.current
    elapsed = max(0.0, now - c.asked_at)
    kind = "主问题" if c.kind == "main" else "追问"
    return (f'<div class="answer-timer{" over" if elapsed > c.budget_s else ""}" data-elapsed="{elapsed:.1f}" '
            f'data-budget="{c.budget_s}" data-key="{esc(c.asked_at)}">'
            f'<div>本题用时（{kind}）<span class="t">{_fmt_s(elapsed)}</span> / {_fmt_s(c.budget_s)}'
            + (f" · 已用提示 {c.hints}" if c.hints else "")
            + (f" · 下一次提示扣 {c.next_hint_cost} 分" if c.next_hint_cost else " · 提示已用完") + "</div>"
            f'<div class="tbar"><i style="width:{min(100, elapsed / c.budget_s * 100):.0f}%"></i></div></div>')


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
            f"<li><span class='g-band {css_class(i.band)}'>{esc(i.band)} {i.score}</span> {esc(i.question)}"
            + (f"<br><span class='g-note'>回看：{esc('；'.join(i.notes))}</span>" if i.notes else "") + "</li>"
            for i in s.study_plan) + "</ol>")
    else:
        parts.append("<p>没有卡顿或不会的题。</p>")
    if s.self_vs_grader:
        parts.append("<h4>自评 vs 评分</h4><table class='svg-table'><tr><th>题目</th><th>自评</th><th>评分</th></tr>"
                     + "".join(f"<tr><td>{esc(short(r['question'], 60))}</td><td>{esc(r['self'])}</td><td>{esc(r['grader'])}</td></tr>"
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


def status_html(text: str, kind: str = "info") -> str:
    return f'<div class="status {kind}">{esc(text)}</div>' if text else ""


def progress_summary(p: dict) -> str:
    """The progress page's head: practice so far, what is due, today's review and the points missed most."""
    if not p or not p.get("answers"):
        return ('<div class="progress-empty">还没有练习记录。答完一场面试（或在命令行 '
                '<code>interviewer ledger import 导出的.json</code>）后，这里会显示进度。</div>')
    review = "".join(f"<li>{esc(q)} <span class='g-note'>{esc(why)}</span></li>" for q, why in p.get("review_20", []))
    missed = "".join(f"<li>漏答 {m['misses']} 次：{esc(m['point'])}<br><span class='g-note'>→ {esc(m['note'])}</span></li>"
                     for m in p.get("most_missed", [])[:8])
    return (f'<div class="progress"><div class="progress-kpis"><b>{p["sessions"]}</b> 场 · <b>{p["answers"]}</b> 题 · '
            f'<b>{p["minutes"]}</b> 分钟 · 连续 <b>{p["streak_days"]}</b> 天 · 24 小时内到期 <b>{len(p["due_today"])}</b> 项 · '
            f'本周到期 <b>{len(p["due_this_week"])}</b> 项</div>'
            f'<h4>今天 20 分钟复习（到期的先，再补薄弱话题）</h4><ol>{review or "<li>没有到期的题。</li>"}</ol>'
            f'<h4>最常漏答的要点</h4><ul class="g-list">{missed or "<li>没有漏答。</li>"}</ul></div>')
