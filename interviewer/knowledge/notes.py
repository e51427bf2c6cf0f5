"""Markdown notes: split into cited sections, and check that every number carries its source.

Owns the notion of a *section*: the text under one heading, addressed as
``file.md § Heading › Subheading`` (the H1 title is the document's name and is not part of the
path). Retrieval chunks, rubric links and citations all use this address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*#*\s*$")
SEP = " › "
MAX_NOTE_BYTES = 2_000_000

# A number that states a quantity: digits with a unit, a multiplier or a percent sign.
QUANTITY = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:[–-]\s*\d+(?:\.\d+)?\s*)?"
    r"(?:%|×|倍|x\b|GB|GiB|MB|MiB|KB|KiB|TB/s|GB/s|TFLOPS|TFLOPs|FLOP/B|ms|µs|tokens/s|tok/s)"
)
SOURCE_MARK = re.compile(r"来源|出处|推算|Source:|source:", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """The text under one heading of a note file."""

    source: str  # file name, e.g. "Day1_基础概念_笔记.md"
    heading: str  # "Heading › Subheading" (empty for text before the first H2)
    text: str
    line: int  # 1-based line of the heading

    @property
    def address(self) -> str:
        return f"{self.source} § {self.heading}" if self.heading else self.source


class NoteError(ValueError):
    """A notes file that cannot be read as text."""


NOTE_SUFFIXES = {".md", ".markdown", ".txt"}


def note_files(directory: Path) -> list[Path]:
    """The note files under ``directory`` (Markdown and text), in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES)


def read_note_text(path: Path) -> str:
    """Read a notes file as UTF-8 text, refusing binary, huge or badly encoded files."""
    size = path.stat().st_size
    if size > MAX_NOTE_BYTES:
        raise NoteError(f"{path.name}: {size} bytes is larger than the {MAX_NOTE_BYTES} byte limit")
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise NoteError(f"{path.name}: looks binary (NUL bytes), skipped")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NoteError(f"{path.name}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def strip_front_matter(text: str) -> tuple[dict[str, str], str, int]:
    """Split a leading ``---`` block of ``key: value`` lines off the text."""
    if not text.startswith("---\n"):
        return {}, text, 0
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text, 0
    meta = {}
    for line in text[4:end].splitlines():
        key, _, value = line.partition(":")
        if key.strip():
            meta[key.strip()] = value.strip()
    body_start = text.find("\n", end + 1) + 1 if text.find("\n", end + 1) >= 0 else len(text)
    return meta, text[body_start:], text[:body_start].count("\n")


def split_sections(source: str, text: str) -> list[Section]:
    """Split Markdown into sections by H2–H4 headings, keeping the heading path of each."""
    _, body, offset = strip_front_matter(text)
    sections: list[Section] = []
    path: list[str] = []
    buf: list[str] = []
    start = offset + 1
    in_code = False

    def flush() -> None:
        content = "\n".join(buf).strip()
        if content:
            sections.append(Section(source, SEP.join(path), content, start))

    for i, line in enumerate(body.splitlines(), start=offset + 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        m = None if in_code else HEADING.match(line)
        if m and len(m.group(1)) >= 2:
            flush()
            level = len(m.group(1)) - 2  # H2 → 0
            path = path[:level] + [m.group(2).strip()]
            buf, start = [], i
        elif m:  # H1: document title, not part of the path
            continue
        else:
            buf.append(line)
    flush()
    return sections


def load_note_sections(path: Path) -> list[Section]:
    return split_sections(path.name, read_note_text(path))


def note_topic(path: Path) -> str:
    """The ``topic:`` of a note's front matter, or its file stem."""
    meta, _, _ = strip_front_matter(read_note_text(path))
    return meta.get("topic", path.stem)


def unsourced_numbers(text: str) -> list[tuple[int, str]]:
    """Blocks (paragraph, list item, table) that state a quantity without a source mark.

    A table counts as sourced when a line right after it carries the mark. Code blocks are skipped.
    Returns ``(line number, block text)`` pairs.
    """
    problems = []
    for line_no, block in _blocks(text):
        if QUANTITY.search(block) and not SOURCE_MARK.search(block):
            problems.append((line_no, block[:160]))
    return problems


def _blocks(text: str) -> list[tuple[int, str]]:
    blocks: list[tuple[int, str]] = []
    cur: list[str] = []
    cur_start = 0
    kind = ""
    in_code = False

    def flush() -> None:
        if cur:
            blocks.append((cur_start, "\n".join(cur)))

    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            cur, kind = [], ""
            in_code = not in_code
            continue
        if in_code:
            continue
        if not stripped or HEADING.match(stripped):
            if kind == "table" and not stripped:
                continue  # a source line may follow a table after one blank line
            flush()
            cur, kind = [], ""
            continue
        line_kind = "table" if stripped.startswith("|") else "item" if re.match(r"^([-*+]|\d+\.)\s", stripped) else "text"
        if kind == "table" and line_kind != "table":
            cur.append(stripped)  # the line after a table belongs to it (its caption/source)
            flush()
            cur, kind = [], ""
            continue
        if line_kind == "item" or (line_kind != kind and kind):
            flush()
            cur, cur_start = [], i
        if not cur:
            cur_start = i
        cur.append(stripped)
        kind = line_kind if line_kind != "item" else "item"
    flush()
    return blocks
