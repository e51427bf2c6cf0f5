"""Export formats are a registry: each is one module in interviewer/report/exporters, and the CLI and the UI
offer every registered one."""

from __future__ import annotations

import csv
import io

from interviewer.engine.session import Interviewer
from interviewer.report.exporters import exporter, exporters, render
from interviewer.report.transcript import TranscriptError, build_transcript


def test_every_format_is_registered_once():
    names = [e.name for e in exporters()]
    assert names[:3] == ["json", "md", "html"] and "anki" in names and len(names) == len(set(names))
    assert exporter("anki").suffix == "csv"
    try:
        render(None, "pdf")
    except TranscriptError as exc:
        assert "anki" in str(exc)


def test_anki_cards_are_the_missed_points(settings):
    iv = Interviewer(settings, None)
    sid = iv.start().session_id
    iv.send(sid, "我是研究生，做推理优化。")
    iv.send(sid, "/skip")
    t = build_transcript(iv.state(sid))
    text = render(t, "anki")
    header, body = text.split("#tags column:3\n", 1)
    assert header.startswith("#separator:Comma\n#html:false")
    rows = list(csv.reader(io.StringIO(body)))
    missed = [p for turn in t.turns for p in turn.grade.points if p.covered < 0.75]
    assert len(rows) == len(missed) > 0
    assert all(len(r) == 3 and r[2].startswith("topic::") for r in rows)
    assert any("回看笔记" in r[1] for r in rows)


def test_anki_cells_cannot_run_as_formulas(settings):
    from interviewer.report.exporters.anki_csv import _plain

    assert _plain("=HYPERLINK(\"x\")").startswith("'=") and _plain("普通文字") == "普通文字"
