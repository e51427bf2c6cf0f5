"""Anki CSV: one flashcard per key point the candidate missed (front: the question and what was missed; back:
the point and the note section to re-read), importable with Anki's File → Import (the header lines set the
separator, plain text and the tags column)."""

from __future__ import annotations

import csv
import io

from interviewer.report.exporters import register
from interviewer.report.transcript import Transcript

COVERED = 0.75  # a point graded at least this covered is not a card


@register("anki", "csv", "下载 Anki 卡片（CSV）", order=40)
def to_anki_csv(t: Transcript) -> str:
    out = io.StringIO()
    out.write("#separator:Comma\n#html:false\n#columns:正面,背面,标签\n#tags column:3\n")
    writer = csv.writer(out, lineterminator="\n")
    for turn in t.turns:
        for p in turn.grade.points:
            if p.covered >= COVERED:
                continue
            front = f"{turn.question}\n（这一点没答到：想一想还缺什么？）"
            back = p.point + (f"\n回看笔记：{p.note}" if p.note else "")
            tags = " ".join(x for x in (f"topic::{turn.topic}", f"band::{turn.grade.band}") if x)
            writer.writerow([_plain(front), _plain(back), tags])
    return out.getvalue()


def _plain(text: str) -> str:
    """Cells are imported as plain text: no leading formula characters a spreadsheet would run."""
    text = text.replace("\r", "")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
