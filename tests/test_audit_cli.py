"""The notes audit over the seed script, and the CLI surface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from interviewer.cli import build_parser
from interviewer.knowledge.audit import audit_paths, audit_text
from interviewer.knowledge.bank import load_facts

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_3a05eff36678fc61.txt"
SEED_TEXT = SEED.read_text(encoding="utf-8") if SEED.exists() else ""

# Every inaccurate or unsourced claim of the seed, by the text that states it.
SEED_PROBLEMS = ["98.3%", "20%+", "O(N²)→O(N)", "2.2-3.5x", "5-20x", "三队列(W/R/S)", "token hash O(1)查找"]


def test_audit_flags_every_problem_claim_of_the_seed():
    text = SEED_TEXT or "\n".join(["98.3%     → KsanaLLM 跨机通信降低", "20%+      → KsanaLLM 推理单价降低",
                                   "| KV Cache | 缓存不变的K、V，O(N²)→O(N) |", "2.2-3.5x  → PagedAttention vs TGI 吞吐提升",
                                   "5-20x     → FlashAttention 显存减少", "| Continuous Batching | 三队列(W/R/S) |",
                                   "| KsanaLLM PrefixCache | 树状PrefixCachedBlock，token hash O(1)查找 |"])
    findings = [f for f in audit_text("seed.txt", text, load_facts()) if f.verdict != "confirmed"]
    lines = text.splitlines()
    for needle in SEED_PROBLEMS:
        hit = [f for f in findings if needle in lines[f.line - 1]]
        assert hit, f"the audit missed the seed claim containing {needle!r}"
        assert all(f.correction and f.source for f in hit)
    if SEED_TEXT:
        assert sum("98.3%" in lines[f.line - 1] for f in findings) >= 2


def test_audit_json_cli_and_unreadable_files(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("FlashAttention 显存节省 5-20x\nKV Cache 把复杂度从 O(N²) 变成 O(N)\n", encoding="utf-8")
    (notes / "b.md").write_bytes(b"\x00\x00binary")
    out = subprocess.run([sys.executable, "-m", "interviewer", "audit", str(notes), "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    rows = json.loads(out.stdout)
    assert {r["line"] for r in rows} >= {1, 2}
    assert {"file", "line", "text", "verdict", "correction", "source"} <= set(rows[0])
    assert "b.md" in out.stderr
    findings, errors = audit_paths([tmp_path / "missing"])
    assert not findings and "missing" in errors[0]


def test_cli_lists_every_subcommand():
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"index", "search", "questions", "grade", "interview", "report", "audit", "eval", "bench"} <= names
    out = subprocess.run([sys.executable, "-m", "interviewer", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "questions" in out.stdout


def test_questions_json_lists_the_bank():
    out = subprocess.run([sys.executable, "-m", "interviewer", "questions", "--json"], capture_output=True, text=True, timeout=60)
    rows = json.loads(out.stdout)
    assert len(rows) >= 60 and {"id", "stage", "topic", "difficulty", "question"} <= set(rows[0])
    assert sum(1 for r in rows if r["topic"] == "ksanallm" and r["difficulty"] == 3) >= 20
