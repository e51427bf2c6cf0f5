"""Candidate commands typed in chat (and sent by the UI buttons).

A message is a command only when the whole message is one; ``/end`` inside an answer is data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RATINGS = ("流畅", "基本", "卡顿", "不会")
COMMAND = re.compile(r"^\s*/(?P<name>[a-zA-Z]+)(?:\s+(?P<arg>\S+))?\s*$")
KNOWN = {"harder", "hint", "skip", "rate", "end", "help"}

HELP = {
    "zh": "可用命令：/harder ksana（下一题换成更难的 KsanaLLM 源码题）、/harder（当前话题更难一级）、"
          "/hint（提示，逐级扣分：5/10/15）、/skip（跳过本题）、/rate 流畅|基本|卡顿|不会（给上一题自评）、/end（结束面试并生成报告）。",
    "en": "Commands: /harder ksana (a harder KsanaLLM source-level question next), /harder (harder on this topic), "
          "/hint (a hint; costs 5/10/15 points), /skip, /rate 流畅|基本|卡顿|不会 (rate your last answer), /end (finish and report).",
}


@dataclass(frozen=True)
class Command:
    name: str  # harder_ksana, harder, hint, skip, rate, end, help, unknown
    arg: str = ""
    raw: str = ""


def parse_command(text: str) -> Command | None:
    """The command a message is, or None when it is an answer."""
    if not text.strip().startswith("/"):
        return None
    m = COMMAND.match(text)
    if not m:
        return Command("unknown", raw=text.strip()[:40])
    name, arg = m.group("name").lower(), (m.group("arg") or "").strip()
    raw = text.strip()
    if name not in KNOWN:
        return Command("unknown", raw=raw[:40])
    if name == "harder" and arg.lower() in ("ksana", "ksanallm"):
        return Command("harder_ksana", raw=raw)
    if name == "harder" and arg:
        return Command("unknown", raw=raw)
    if name == "rate":
        return Command("rate", arg if arg in RATINGS else "", raw) if arg in RATINGS else Command("unknown", raw=raw)
    return Command(name, arg, raw)
