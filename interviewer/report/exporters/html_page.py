"""HTML: a self-contained report page (inline SVG charts, no scripts, a CSP that loads nothing; candidate text escaped)."""

from __future__ import annotations

import html

from interviewer.bands import COLOUR, band_of
from interviewer.knowledge.citation import address_of
from interviewer.knowledge.topics import topic_label
from interviewer.report.exporters import register
from interviewer.report.transcript import STAGE_NAMES, Transcript, plan_title


def _bar_chart(values: dict[str, int], label: dict[str, str] | None = None) -> str:
    """An inline SVG bar chart (no scripts, no external assets)."""
    label = label or {}
    rows = list(values.items())
    h = 26 * len(rows) + 10
    bars = []
    for i, (k, v) in enumerate(rows):
        y = 5 + 26 * i
        color = COLOUR[band_of(v)]
        bars.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(label.get(k, k))}</text>'
                    f'<rect x="130" y="{y}" width="{v * 3}" height="18" fill="{color}"/>'
                    f'<text x="{136 + v * 3}" y="{y + 14}" font-size="12">{v}</text>')
    return f'<svg role="img" width="460" height="{h}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'


def _reverse_log(turn) -> str:
    """The candidate's questions of the reverse stage and every answer the interviewer gave."""
    if not turn.reverse_log:
        return ""
    e = html.escape
    items = "".join(f"<dt>问：{e(x.get('question', ''))}</dt><dd>答：{e(x.get('answer', '') or '（结束提问）')}</dd>"
                    for x in turn.reverse_log)
    return f"<dl class='reverse'>{items}</dl>"


@register("html", "html", "下载 HTML", order=30)
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
        cites = "；".join(e(address_of(c)) for c in turn.citations)
        turns_html.append(
            f"<section class='turn'><h3>{n}. {e(turn.question)}</h3>"
            + (f"<p class='cite'>来自笔记：{cites}</p>" if cites else "")
            + f"<blockquote>{e(turn.answer or '（未作答）')}</blockquote>"
            f"<p><b>{e(g.band)} · {g.score}</b> 分 · 用时 {int(turn.seconds)} 秒 · {e(g.grader)} · 置信度 {g.confidence:.2f}"
            + (f" · 自评 {e(turn.self_rating)}" if turn.self_rating else "") + "</p>"
            f"<ul>{points}{wrong}</ul>" + _reverse_log(turn) + f"<p>{e(g.feedback)}</p>"
            + (f"<details><summary>{'参考答案' if turn.kind == 'main' else '参考要点'}</summary>"
               f"<div class='ref'>{e(turn.reference_answer)}</div></details>" if turn.reference_answer else "")
            + "</section>")
    title = t.plan_title or plan_title(t.plan, t.lang)
    plan = "".join(f"<li>[{e(i.band)} {i.score}] {e(i.question)} → {e('；'.join(i.notes))}</li>" for i in s.study_plan)
    style = ("body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC','PingFang SC',sans-serif;max-width:900px;margin:auto;padding:1em;color:#222}"
             ".turn{border-top:1px solid #ddd;padding:.5em 0}.ok{color:#2e7d32}.part{color:#ef6c00}.miss{color:#c62828}"
             "blockquote{background:#f6f6f6;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}.cite{color:#555;font-size:.9em}"
             ".ref{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;padding:.5em}"
             "li,p,td,h3{overflow-wrap:anywhere}.reverse dt{font-weight:600}.reverse dd{margin:0 0 .5em 1em}")
    return (f"<!doctype html><html lang='{t.lang}'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>模拟面试报告 {e(t.session_id[:8])}</title><style>{style}</style></head><body>"
            f"<h1>模拟面试报告</h1><p>{e(title)} · 模型：{e(t.model)} · 作答 {s.answered} 题 · 总分 <b>{s.score}（{e(s.band)}）</b></p>"
            f"<h2>分阶段得分</h2>{_bar_chart(s.stages, STAGE_NAMES)}<h2>分话题得分</h2>{_bar_chart(s.topics, {k: topic_label(k, t.lang) for k in s.topics})}"
            f"<h2>复习计划</h2><ul>{plan or '<li>没有卡顿或不会的题。</li>'}</ul><h2>逐题记录</h2>{''.join(turns_html)}</body></html>")
