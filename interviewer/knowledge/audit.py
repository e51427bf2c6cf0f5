"""The notes audit: find checked claims of the fact registry in a candidate's own notes.

Reads Markdown/text files (or folders of them) line by line and reports every line that matches a
registry claim, with its verdict, the correct statement and the source. A file that cannot be read
is reported, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from interviewer.knowledge.bank import Fact, load_facts
from interviewer.knowledge.notes import NoteError, note_files, read_note_text

VERDICT_ZH = {"confirmed": "✅ 已确认", "corrected": "✏️ 已更正", "unsourced": "❓ 未找到出处", "misleading": "⚠️ 有误导性"}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    text: str
    fact_id: str
    claim: str
    verdict: str
    correction: str
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


def audit_text(name: str, text: str, facts: list[Fact]) -> list[Finding]:
    compiled = [(f, [re.compile(p, re.IGNORECASE) for p in f.patterns]) for f in facts]
    findings = []
    for n, line in enumerate(text.splitlines(), 1):
        for fact, patterns in compiled:
            if any(p.search(line) for p in patterns) and not any(re.search(u, line, re.IGNORECASE) for u in fact.unless):
                findings.append(Finding(name, n, line.strip()[:300], fact.id, fact.claim, fact.verdict,
                                        fact.correct, fact.source))
    return findings


def audit_paths(paths: list[Path], facts: list[Fact] | None = None) -> tuple[list[Finding], list[str]]:
    """Findings over files and folders, and messages for files that could not be read."""
    facts = facts if facts is not None else load_facts()
    findings: list[Finding] = []
    errors: list[str] = []
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += note_files(p)
        elif p.is_file():
            files.append(p)
        else:
            errors.append(f"{p}: no such file or folder")
    for f in files:
        try:
            findings += audit_text(str(f), read_note_text(f), facts)
        except (NoteError, OSError) as exc:
            errors.append(str(exc))
    return findings, errors


def format_findings(findings: list[Finding], only_problems: bool = False) -> str:
    lines = []
    for f in findings:
        if only_problems and f.verdict == "confirmed":
            continue
        lines.append(f"{f.file}:{f.line}: {VERDICT_ZH.get(f.verdict, f.verdict)} {f.claim}\n"
                     f"    原文：{f.text}\n    正确：{f.correction}\n    出处：{f.source}")
    return "\n".join(lines)
