"""The wrong-claim finder's literal prefilter (``claims.required_literals``) never hides a match: wherever a pattern
of the registry or of a question matches a line, every literal it requires is in that line. Read over the eval
answers and the notes, where these claims (and their corrections) are written many ways."""

import json
import re
from pathlib import Path

from interviewer.grading import claims
from interviewer.knowledge.bank import KNOWLEDGE_DIR, default_bank

ROOT = Path(__file__).resolve().parents[1]


def lines() -> list[str]:
    out = []
    for path in sorted((ROOT / "eval" / "grading").glob("*.jsonl")):
        out += [json.loads(row)["answer"] for row in path.read_text(encoding="utf-8").splitlines() if row.strip()]
    for path in sorted((KNOWLEDGE_DIR / "notes").rglob("*.md")):
        out.append(path.read_text(encoding="utf-8"))
    return [part for text in out for part in re.split(r"[。；\n]", text) if part.strip()]


def test_required_literals_never_hide_a_match():
    bank = default_bank()
    patterns = {p for m in claims.registry_misconceptions() for p in m.patterns}
    patterns |= {p for q in bank.values() for m in q.misconceptions for p in m.patterns}
    text = lines()
    assert len(patterns) > 100 and len(text) > 3000
    matched = with_literals = 0
    for pattern in patterns:
        literals = claims.required_literals(pattern)
        with_literals += bool(literals)
        for line in text:
            if re.search(pattern, line, re.IGNORECASE):
                matched += 1
                assert all(lit in claims.folded(line) for lit in literals), (pattern, line, literals)
    assert with_literals > len(patterns) // 2  # the prefilter is doing something
    assert matched > 50  # and the check read real matches


def test_required_literals_reads_a_pattern():
    assert claims.required_literals(r"vLLM\s*(?:最早)?提出了?连续批处理") == ("vllm", "提出", "连续批处理")
    assert claims.required_literals(r"(?:a|b)c") == ("c",)
    assert claims.required_literals(r"x(") == ()  # unreadable: no prefilter
