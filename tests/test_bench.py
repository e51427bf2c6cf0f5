"""`interviewer bench` smoke: every figure is produced (tiny sizes, not timed), and the JSON output carries them."""

from __future__ import annotations

import json
import math

import pytest

from devtools import bench, bench_index

TINY = bench.Sizes(synthetic_chunks=8, builtin_sample=4, search_queries=3, turn_sessions=1, load_sessions=2, load_turns=2,
                   load_pause_s=0.1, throughput_sessions=2, throughput_turns=2, long_turns=40,
                   grade_answers=40)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_produces_every_figure(indexed_settings, capsys):
    figures = bench.measure(indexed_settings, TINY, quick=True)
    assert figures["errors"] == {}, figures["errors"]
    for key in bench_index.REQUIRED:
        value = figures[key]
        assert isinstance(value, (int, float)) and not math.isnan(value) and value >= 0, (key, value)
    assert figures["tokens_turns_run"] == 40
    assert figures["baseline_tokens_turn40"] > figures["tokens_turn40"], "resending the history costs more"
    assert figures["reindex_embedded"] == 0, "an unchanged re-index embeds nothing"
    assert set(figures["met"]) <= set(figures["targets"]) and figures["scaling"]
    bench.emit(figures, as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert set(bench_index.REQUIRED) <= set(data)
    bench.emit(figures, as_json=False)
    text = capsys.readouterr().out
    assert "search p95" in text and "Targets:" in text and "How it scales" in text


def test_percentiles_and_judging():
    assert bench_index.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10
    assert bench_index.percentile([5.0], 50) == 5.0
    met = bench.judge({"search_p95_ms": 50, "throughput_turns_s": 6, "cold_start_s": None},
                      {"search_p95_ms": 40, "throughput_turns_s": 5, "cold_start_s": 8})
    assert met == {"search_p95_ms": False, "throughput_turns_s": True}
