"""Markdown: the report as a readable document (candidate text escaped: no live links, images or HTML)."""

from __future__ import annotations

from interviewer.knowledge.citation import address_of
from interviewer.knowledge.topics import topic_label
from interviewer.report.exporters import register
from interviewer.report.transcript import STAGE_NAMES, Transcript, plan_title


def _md_escape(text: str) -> str:
    """Candidate text inside Markdown: no live links, images or HTML."""
    return (text.replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;")
            .replace("![", "!\\[").replace("](", "]\\(").replace("`", "\\`"))


@register("md", "md", "下载 Markdown", order=20)
def to_markdown(t: Transcript) -> str:
    s = t.summary
    lines = [f"# 模拟面试报告 · {t.session_id[:8]}", "",
             f"- 模型：{t.model}  ·  计划：{t.plan_title or plan_title(t.plan, t.lang)}  ·  作答 {s.answered} 题",
             f"- 总分：**{s.score}（{s.band}）**", ""]
    lines += ["## 分阶段得分", "", "| 阶段 | 得分 |", "|---|---|"]
    lines += [f"| {STAGE_NAMES.get(k, k)} | {v} |" for k, v in s.stages.items()]
    lines += ["", "## 分话题得分", "", "| 话题 | 得分 |", "|---|---|"] + [f"| {topic_label(k, t.lang)} | {v} |" for k, v in s.topics.items()]
    lines += ["", "## 复习计划（卡顿和不会的回去看对应笔记）", ""]
    lines += [f"- [{i.band} {i.score}] {_md_escape(i.question)} → " + "；".join(i.notes) for i in s.study_plan] or ["- 没有卡顿或不会的题。"]
    lines += ["", "## 逐题记录", ""]
    for n, turn in enumerate(t.turns, 1):
        g = turn.grade
        kind = "追问" if turn.kind == "follow_up" else "主问题"
        lines += [f"### {n}. [{STAGE_NAMES.get(turn.stage, turn.stage)} · {kind} · 难度 {turn.difficulty}] {_md_escape(turn.question)}", ""]
        if turn.citations:
            lines.append("来自笔记：" + "；".join(address_of(c) for c in turn.citations))
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
        if turn.reverse_log:
            lines += ["", "**你的提问与面试官的回答**", ""]
            for x in turn.reverse_log:
                lines += [f"- 问：{_md_escape(x.get('question', ''))}", f"  答：{_md_escape(x.get('answer', '') or '（结束提问）')}"]
        lines += ["", f"反馈：{_md_escape(g.feedback)}", ""]
        if turn.reference_answer:
            label = "参考答案" if turn.kind == "main" else "参考要点"
            lines += [f"<details><summary>{label}</summary>", "", turn.reference_answer.strip(), "", "</details>", ""]
    return "\n".join(lines)
