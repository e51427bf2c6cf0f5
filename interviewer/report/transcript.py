"""The graded transcript: summary, study plan, and exports to JSON, Markdown and self-contained HTML.

One transcript model serves the UI, the CLI, the exports and the eval. The JSON export re-imports
(``load_transcript``) with validation, so a report can be re-rendered or compared later. Candidate
text is escaped in HTML; no secret is ever written (exports carry only what is listed here).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from interviewer.grading.offline import Grade, band_of

VERSION = 1
WEAK = ("卡顿", "不会")
MAX_EXPORT_NAME_BYTES = 200  # file systems refuse names over 255 bytes
STAGE_NAMES = {"intro": "自我介绍", "technical": "技术深挖", "project": "项目讲解", "reverse": "反问", "drill": "快问快答"}


class TranscriptError(ValueError):
    """A transcript file that cannot be read."""


class Turn(BaseModel):
    stage: str
    question_id: str | None
    kind: Literal["main", "follow_up"]
    topic: str
    difficulty: int
    question: str
    citations: list[dict[str, str]] = Field(default_factory=list)
    answer: str
    seconds: float = Field(ge=0)
    self_rating: Literal["流畅", "基本", "卡顿", "不会"] | None = None
    hints_used: int = Field(default=0, ge=0)
    commands: list[str] = Field(default_factory=list)
    grade: Grade
    reference_answer: str = ""
    reverse_log: list[dict[str, Any]] = Field(default_factory=list)


class StudyItem(BaseModel):
    question: str
    band: str
    score: int
    notes: list[str]


class Summary(BaseModel):
    score: int
    band: str
    stages: dict[str, int]
    topics: dict[str, int]
    weak_topics: list[str]
    study_plan: list[StudyItem]
    answered: int
    self_vs_grader: list[dict[str, str]] = Field(default_factory=list)


class Transcript(BaseModel):
    version: int = VERSION
    session_id: str
    model: str
    lang: Literal["zh", "en"] = "zh"
    plan: str = ""
    turns: list[Turn]
    summary: Summary


def _mean(values: list[int]) -> int:
    return int(round(sum(values) / len(values))) if values else 0


def summarize(turns: list[dict], lang: str = "zh") -> dict:
    """Totals from the per-turn grades: overall, by stage and topic, weak topics, and a study plan."""
    scores = [t["grade"]["score"] for t in turns]
    by_stage: dict[str, list[int]] = {}
    by_topic: dict[str, list[int]] = {}
    for t in turns:
        by_stage.setdefault(t["stage"], []).append(t["grade"]["score"])
        by_topic.setdefault(t["topic"], []).append(t["grade"]["score"])
    topics = {k: _mean(v) for k, v in by_topic.items()}
    plan = []
    for t in turns:
        if t["grade"]["band"] in WEAK:
            notes = [f"{c['source']} § {c['heading']}" for c in t["grade"].get("citations", [])]
            notes = notes or [f"{c['source']} § {c['heading']}" for c in t.get("citations", [])]
            plan.append({"question": t["question"], "band": t["grade"]["band"], "score": t["grade"]["score"],
                         "notes": notes})
    overall = _mean(scores)
    return {"score": overall, "band": band_of(overall), "stages": {k: _mean(v) for k, v in by_stage.items()},
            "topics": topics, "weak_topics": sorted(k for k, v in topics.items() if v < 60),
            "study_plan": plan, "answered": len(turns),
            "self_vs_grader": [{"question": t["question"], "self": t["self_rating"], "grader": t["grade"]["band"]}
                               for t in turns if t.get("self_rating")]}


def build_transcript(state: dict) -> Transcript:
    turns = state.get("turns", [])
    summary = state.get("summary") or summarize(turns, state.get("lang", "zh"))
    return Transcript(session_id=state["session_id"], model=state.get("model", "offline"), lang=state.get("lang", "zh"),
                      plan=state.get("plan_id", ""), turns=[Turn.model_validate(t) for t in turns],
                      summary=Summary.model_validate(summary))


def load_transcript(path: Path) -> Transcript:
    """Read a JSON export back, with a clear error for a broken or foreign file."""
    try:
        raw = path.read_bytes()
        if len(raw) > 20_000_000:
            raise TranscriptError(f"{path.name}: file too large ({len(raw)} bytes)")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, 4300+ digit numbers
        raise TranscriptError(f"{path.name}: not a JSON transcript ({str(exc)[:200]})") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise TranscriptError(f"{path.name}: not a transcript of version {VERSION}")
    try:
        return Transcript.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise TranscriptError(f"{path.name}: field {where}: {first['msg']}") from exc


def to_json(t: Transcript) -> str:
    return json.dumps(t.model_dump(mode="json"), ensure_ascii=False, indent=2)


def _md_escape(text: str) -> str:
    """Candidate text inside Markdown: no live links, images or HTML."""
    return (text.replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;")
            .replace("![", "!\\[").replace("](", "]\\(").replace("`", "\\`"))


def to_markdown(t: Transcript) -> str:
    s = t.summary
    lines = [f"# 模拟面试报告 · {t.session_id[:8]}", "",
             f"- 模型：{t.model}  ·  计划：{t.plan}  ·  作答 {s.answered} 题",
             f"- 总分：**{s.score}（{s.band}）**", ""]
    lines += ["## 分阶段得分", "", "| 阶段 | 得分 |", "|---|---|"]
    lines += [f"| {STAGE_NAMES.get(k, k)} | {v} |" for k, v in s.stages.items()]
    lines += ["", "## 分话题得分", "", "| 话题 | 得分 |", "|---|---|"] + [f"| {k} | {v} |" for k, v in s.topics.items()]
    lines += ["", "## 复习计划（卡顿和不会的回去看对应笔记）", ""]
    lines += [f"- [{i.band} {i.score}] {_md_escape(i.question)} → " + "；".join(i.notes) for i in s.study_plan] or ["- 没有卡顿或不会的题。"]
    lines += ["", "## 逐题记录", ""]
    for n, turn in enumerate(t.turns, 1):
        g = turn.grade
        kind = "追问" if turn.kind == "follow_up" else "主问题"
        lines += [f"### {n}. [{STAGE_NAMES.get(turn.stage, turn.stage)} · {kind} · 难度 {turn.difficulty}] {_md_escape(turn.question)}", ""]
        if turn.citations:
            lines.append("来自笔记：" + "；".join(f"{c['source']} § {c['heading']}" for c in turn.citations))
        lines += ["", "**回答**（用时 %d 秒%s）：" % (turn.seconds, f"，自评 {turn.self_rating}" if turn.self_rating else ""), "",
                  "> " + _md_escape(turn.answer or "（未作答）").replace("\n", "\n> "), "",
                  f"**评分**：{g.band} · {g.score} 分（{g.grader}，置信度 {g.confidence:.2f}"
                  + (f"，提示扣 {g.hint_deduction} 分" if g.hint_deduction else "") + "）", ""]
        for p in g.points:
            mark = "✅" if p.covered >= 0.75 else "🟡" if p.covered > 0 else "❌"
            ev = f" — 「{_md_escape(p.evidence[:120])}」" if p.evidence else ""
            lines.append(f"- {mark} {p.point}{ev}")
        for m in g.misconceptions:
            lines.append(f"- ⚠️ 错误说法：{m.claim} → {m.correction}（{m.source}）")
        lines += ["", f"反馈：{_md_escape(g.feedback)}", ""]
        if turn.reference_answer:
            lines += ["<details><summary>参考答案</summary>", "", turn.reference_answer.strip(), "", "</details>", ""]
    return "\n".join(lines)


def _bar_chart(values: dict[str, int], label: dict[str, str] | None = None) -> str:
    """An inline SVG bar chart (no scripts, no external assets)."""
    label = label or {}
    rows = list(values.items())
    h = 26 * len(rows) + 10
    bars = []
    for i, (k, v) in enumerate(rows):
        y = 5 + 26 * i
        color = "#2e7d32" if v >= 85 else "#1565c0" if v >= 60 else "#ef6c00" if v >= 30 else "#c62828"
        bars.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(label.get(k, k))}</text>'
                    f'<rect x="130" y="{y}" width="{v * 3}" height="18" fill="{color}"/>'
                    f'<text x="{136 + v * 3}" y="{y + 14}" font-size="12">{v}</text>')
    return f'<svg role="img" width="460" height="{h}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'


def to_html(t: Transcript) -> str:
    e = html.escape
    s = t.summary
    turns_html = []
    for n, turn in enumerate(t.turns, 1):
        g = turn.grade
        points = "".join(
            f"<li class='{'ok' if p.covered >= 0.75 else 'part' if p.covered > 0 else 'miss'}'>{e(p.point)}"
            + (f" <q>{e(p.evidence[:160])}</q>" if p.evidence else "") + "</li>" for p in g.points)
        wrong = "".join(f"<li class='miss'>错误说法：{e(m.claim)} → {e(m.correction)}（{e(m.source)}）</li>" for m in g.misconceptions)
        cites = "；".join(e(f"{c['source']} § {c['heading']}") for c in turn.citations)
        turns_html.append(
            f"<section class='turn'><h3>{n}. {e(turn.question)}</h3>"
            + (f"<p class='cite'>来自笔记：{cites}</p>" if cites else "")
            + f"<blockquote>{e(turn.answer or '（未作答）')}</blockquote>"
            f"<p><b>{e(g.band)} · {g.score}</b> 分 · 用时 {int(turn.seconds)} 秒 · {e(g.grader)} · 置信度 {g.confidence:.2f}"
            + (f" · 自评 {e(turn.self_rating)}" if turn.self_rating else "") + "</p>"
            f"<ul>{points}{wrong}</ul><p>{e(g.feedback)}</p>"
            + (f"<details><summary>参考答案</summary><pre>{e(turn.reference_answer)}</pre></details>" if turn.reference_answer else "")
            + "</section>")
    plan = "".join(f"<li>[{e(i.band)} {i.score}] {e(i.question)} → {e('；'.join(i.notes))}</li>" for i in s.study_plan)
    style = ("body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC','PingFang SC',sans-serif;max-width:900px;margin:auto;padding:1em;color:#222}"
             ".turn{border-top:1px solid #ddd;padding:.5em 0}.ok{color:#2e7d32}.part{color:#ef6c00}.miss{color:#c62828}"
             "blockquote{background:#f6f6f6;padding:.5em;white-space:pre-wrap}.cite{color:#555;font-size:.9em}")
    return (f"<!doctype html><html lang='{t.lang}'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>模拟面试报告 {e(t.session_id[:8])}</title><style>{style}</style></head><body>"
            f"<h1>模拟面试报告</h1><p>模型：{e(t.model)} · 作答 {s.answered} 题 · 总分 <b>{s.score}（{e(s.band)}）</b></p>"
            f"<h2>分阶段得分</h2>{_bar_chart(s.stages, STAGE_NAMES)}<h2>分话题得分</h2>{_bar_chart(s.topics)}"
            f"<h2>复习计划</h2><ul>{plan or '<li>没有卡顿或不会的题。</li>'}</ul><h2>逐题记录</h2>{''.join(turns_html)}</body></html>")


RENDERERS = {"json": to_json, "md": to_markdown, "html": to_html}


def render(t: Transcript, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise TranscriptError(f"unknown format {fmt!r}; use json, md or html")
    return RENDERERS[fmt](t)


def safe_export_path(directory: Path, name: str) -> Path:
    """A file name inside ``directory``; path separators and traversal are refused."""
    clean = "".join(ch for ch in name if ch.isalnum() or ch in "-_.")
    if not clean or clean.startswith(".") or clean != name:
        raise TranscriptError(f"unsafe export name {name!r}")
    if len(clean.encode("utf-8")) > MAX_EXPORT_NAME_BYTES:
        raise TranscriptError(f"export name too long ({len(clean.encode('utf-8'))} bytes; at most {MAX_EXPORT_NAME_BYTES})")
    directory.mkdir(parents=True, exist_ok=True)
    return directory / clean
