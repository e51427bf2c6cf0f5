"""Terminal interviews: scripted from a JSONL file (tests, eval, benchmarks) or interactive.

A scripted file has one ``{"say": "...", "seconds": N}`` per line; commands go in ``say`` too.
If the file runs out first, the interview stops there and the transcript is still written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from interviewer.engine.session import Interviewer, Reply
from interviewer.knowledge.citation import address_of
from interviewer.report.exporters import exporters
from interviewer.report.transcript import build_transcript


class ScriptError(ValueError):
    """A line of an answers file that is not ``{"say": str, "seconds"?: number}``."""


def read_script(path: Path) -> list[dict]:
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read ({exc.strerror})") from exc
    lines = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{path.name}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict) or not isinstance(item.get("say"), str):
            raise ScriptError(f"{path.name}:{n}: expected {{\"say\": \"...\"}}")
        seconds = item.get("seconds")
        if seconds is not None and (not isinstance(seconds, (int, float)) or seconds < 0):
            raise ScriptError(f"{path.name}:{n}: seconds must be a non-negative number")
        lines.append({"say": item["say"], "seconds": seconds})
    return lines


def print_messages(reply: Reply, out=sys.stdout) -> None:
    for m in reply.messages:
        if m["role"] == "user":
            continue
        print(f"\n面试官> {m['content']}", file=out)
        for c in m.get("citations") or []:
            print(f"    来自笔记：{address_of(c)}", file=out)


def export_transcript(interviewer: Interviewer, session_id: str, path: Path) -> Path:
    by_suffix = {f".{e.suffix}": e for e in exporters()}
    chosen = by_suffix.get(path.suffix.lower())
    if chosen is None:
        raise ScriptError(f"{path}: export must end in {', '.join(by_suffix)}")
    path.write_text(chosen.write(build_transcript(interviewer.state(session_id))), encoding="utf-8")
    return path


def run_scripted(interviewer: Interviewer, answers: Path, export: Path | None, plan: str | None = None,
                 lang: str | None = None, resume: str | None = None, out=sys.stdout, minutes: int = 20) -> int:
    try:
        script = read_script(answers)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if resume:
        try:
            reply = interviewer.resume(resume)
        except KeyError:  # unknown id, or a session killed before its first question was stored
            print(f"error: no session {resume!r} to resume in {interviewer.settings.db_path}", file=sys.stderr)
            return 2
        sid, skip = resume, reply.state.get("inputs", 0)
    else:
        reply = interviewer.start(plan, lang, minutes=minutes)
        sid, skip = reply.session_id, 0
        print_messages(reply, out)
    print(f"session: {sid}", file=sys.stderr)
    for item in script[skip:]:
        if reply.state.get("finished"):
            break
        print(f"\n候选人> {item['say'][:400]}", file=out)
        reply = interviewer.send(sid, item["say"], item["seconds"])
        print_messages(reply, out)
    if export:
        print(f"wrote {export_transcript(interviewer, sid, export)}", file=sys.stderr)
    return 0


def run_interactive(interviewer: Interviewer, plan: str | None = None, lang: str | None = None, minutes: int = 20) -> int:
    reply = interviewer.start(plan, lang, minutes=minutes)
    print_messages(reply)
    print("\n（输入回答后回车；/help 查看命令；Ctrl-D 结束）")
    while not reply.state.get("finished"):
        try:
            text = input("\n你> ")
        except EOFError:
            break
        reply = interviewer.send(reply.session_id, text)
        print_messages(reply)
    print(f"\nsession: {reply.session_id}")
    return 0
