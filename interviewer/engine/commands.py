"""Candidate commands typed in chat (and sent by the UI buttons): parsing, and the ``command`` graph node
that carries them out (/hint, /skip, /harder, /harder ksana, /rate, /end, /help).

A message is a command only when the whole message is one; ``/end`` inside an answer is data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from interviewer.engine import moves
from interviewer.engine.context import Context
from interviewer.engine.state import END, MainThread, Move, OpenQuestion, State, message
from interviewer.engine.turns import answer_seconds, turn
from interviewer.grading.contract import PointResult
from interviewer.grading.offline import grade_offline
from interviewer.knowledge.topics import ladder_for, topic_label
from interviewer.messages import say

RATINGS = ("流畅", "基本", "卡顿", "不会")
COMMAND = re.compile(r"^\s*/(?P<name>[a-zA-Z]+)(?:\s+(?P<arg>\S+))?\s*$")
KNOWN = {"harder", "hint", "skip", "rate", "end", "help"}



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


# ------------------------------------------------------------------ the command node


def command_node(ctx: Context, state: State) -> dict:
    text = (state.get("inbox") or {}).get("text", "")
    cmd = parse_command(text)
    lang = state.get("lang", "zh")
    messages = list(state["messages"])
    current = OpenQuestion.load(state.get("current"))

    def notice(key: str, **values: object) -> None:
        messages.append(message(say(key, lang, **values), kind="notice"))

    if cmd.name in ("help", "unknown"):
        prefix = "" if cmd.name == "help" else say("unknown_command", lang)
        messages.append(message(prefix + say("help", lang), kind="notice"))
        return {"messages": messages, "route": "end"}
    if cmd.name == "rate":
        return rate(state, cmd, messages, notice)
    if cmd.name == "end":
        return {"messages": messages, "next": END.dump(), "route": "ask", "current": None}
    if current is None:
        notice("no_open_question")
        return {"messages": messages, "route": "end"}
    current.commands = current.commands + [cmd.raw]
    if cmd.name == "hint":
        return hint(ctx, state, current, messages, lang)
    if cmd.name == "skip":
        return skip(ctx, state, current, messages, lang)
    return harder(ctx, state, current, messages, lang, ladder="ksana" if cmd.name == "harder_ksana" else None)


def rate(state: State, cmd: Command, messages: list, notice) -> dict:
    turns = list(state.get("turns", []))
    if not turns:
        notice("nothing_to_rate")
        return {"messages": messages, "route": "end"}
    turns[-1] = {**turns[-1], "self_rating": cmd.arg, "commands": turns[-1]["commands"] + [cmd.raw]}
    notice("rated", rating=cmd.arg, band=turns[-1]["grade"]["band"])
    return {"messages": messages, "turns": turns, "route": "end"}


def hint(ctx: Context, state: State, current: OpenQuestion, messages: list, lang: str) -> dict:
    level = len(current.hints) + 1
    if level > len(moves.HINT_DEDUCTIONS):
        messages.append(message(say("no_hints_left", lang), kind="notice"))
        return {"messages": messages, "current": current.dump(), "route": "end"}
    target = ctx.target(current.target, lang)
    covered = set(MainThread.load(state.get("main")).covered)
    points = [p for p in sorted(target.points, key=lambda p: -p.weight) if p.id not in covered] or list(target.points)
    text, deduction = moves.hint(current.text, points, level, lang)
    current.hints = current.hints + [{"level": level, "text": text, "deduction": deduction}]
    total = sum(h["deduction"] for h in current.hints)
    cost = moves.next_hint_cost(level)
    after = say("hint_next", lang, points=cost) if cost else say("hint_last", lang)
    messages.append(message(text + say("hint_tail", lang, level=level, total=total, after=after), kind="hint"))
    return {"messages": messages, "current": current.dump(), "route": "end"}


def skip(ctx: Context, state: State, current: OpenQuestion, messages: list, lang: str) -> dict:
    target = ctx.target(current.target, lang)
    points = [PointResult(point_id=p.id, point=p.point, covered=0, note=p.note, weight=p.weight) for p in target.points]
    grade = grade_offline(target, "")
    grade = grade.model_copy(update={"points": points, "flags": ["skipped"], "score": 0, "band": "不会",
                                     "feedback": say("skipped_feedback", lang) + grade.feedback})
    main = MainThread.load(state.get("main"))
    record = turn(ctx, current, "", answer_seconds(ctx, state), grade, lang, main.question_id)
    messages.append(message(say("skipping", lang), kind="notice"))
    main.last_grade = grade.model_dump()
    return {"messages": messages, "turns": list(state.get("turns", [])) + [record], "current": None,
            "main": main.model_dump(), "route": "decide"}


def harder(ctx: Context, state: State, current: OpenQuestion, messages: list, lang: str, ladder: str | None) -> dict:
    """One level up: ``/harder ksana`` climbs the KsanaLLM ladder of the topic under discussion (then the general
    one); ``/harder`` climbs the topic's own ladder. Says so when a ladder is exhausted and what comes instead."""
    asked = set(state.get("asked", []))
    main_q = ctx.bank.get(MainThread.load(state.get("main")).question_id or current.target.question_id)
    topic = main_q.topic if main_q else current.topic
    levels = dict(state.get("ladder_levels") or {})
    if ladder is not None:
        own, general = ladder_for(ladder, topic)
        move, used = None, None
        for lad in (own, general):
            if lad is None:
                continue
            level = min(moves.TOP_LEVEL, max(levels.get(lad.id, 0), current.difficulty) + 1)
            move = moves.ladder_move(ctx.bank, lad, level, asked, lang)
            if move is not None:
                used = lad
                break
            if lad is own and general is not None:
                messages.append(message(say("ladder_done_next", lang, ladder=lad.label.get(lang), next=general.label.get(lang)), kind="notice"))
        if move is None:
            messages.append(message(say("ladders_done", lang), kind="notice"))
            return {"messages": messages, "current": current.dump(), "route": "end"}
        levels[used.id] = move.difficulty
    else:
        move = moves.harder_topic_move(ctx.bank, main_q, current.difficulty + 1, asked, lang) if main_q else None
        if move is None:
            messages.append(message(say("topic_top_level", lang, topic=topic_label(topic, lang)), kind="notice"))
            return {"messages": messages, "current": current.dump(), "route": "end"}
    queue = list(state.get("queue", []))
    if current.kind == "main":  # put the unanswered main question back; it is asked after the detour
        back = Move(**current.model_dump(include=set(Move.model_fields) - {"commands", "grounding", "plan_pos"}))
        queue.insert(0, back.model_copy(update={"deferred": True}).dump())
    nxt = moves.ground(move, ctx.retriever).model_copy(update={"commands": [(state.get("inbox") or {}).get("text", "").strip()]})
    updates = {"messages": messages, "queue": queue, "next": nxt.dump(), "route": "ask", "current": None, "ladder_levels": levels}
    if current.kind == "main":
        asked_list = list(state.get("asked", []))
        if current.text in asked_list:
            asked_list.remove(current.text)
        updates["asked"] = asked_list
    return updates
