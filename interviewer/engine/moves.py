"""The interviewer's moves: probes of a missed point, deeper follow-ups, ``/harder`` ladder steps, hints, and
a model's rewording of a follow-up.

Every constructor here is pure (bank in, :class:`Move` out); a move carries a :class:`Grounding` that
:func:`ground` turns into citations of notes that exist (the only step that searches). A model only rewrites
the wording of a follow-up from retrieved passages; a rewrite whose citations are not in the index is
replaced by the authored question.
"""

from __future__ import annotations

import re
import time

from interviewer.engine.prefetch import CITATION_MARK, TextStream
from interviewer.engine.state import Grounding, Move, Reason, TargetRef
from interviewer.grading.answer_text import clean_text, is_injection
from interviewer.knowledge.bank import KeyPoint, Question
from interviewer.knowledge.citation import Citation, all_exist
from interviewer.knowledge.topics import Ladder
from interviewer.messages import language_name, say
from interviewer.models import bounded
from interviewer.search.retrieval import Passage, Retriever

HINT_DEDUCTIONS = (5, 10, 15)  # per level; cumulative
STRONG = 85
KSANA = "ksanallm"
TOP_LEVEL = 4  # a source-level question's harder follow-up


def ground(move: Move, retriever: Retriever | None, answer: str = "") -> Move:
    """The move with its citations: the authored note section first, then what retrieval finds for the move's
    query in the light of what the candidate said (only sections that exist). The dense half embeds the query
    alone (reused whenever that point is probed again); the lexical half also reads the candidate's words."""
    g = move.grounding
    if g is None:
        return move
    cites = [Citation.parse(g.note).model_dump()]
    if retriever is not None:
        for p in retriever.search(f"{g.query} {answer[:200]}", k=3, dense_query=g.query):
            c = {"source": p.source, "heading": p.heading}
            if c not in cites and (p.origin == "own" or not g.topic or p.topic == g.topic or len(cites) < 2):
                cites.append(c)
            if len(cites) >= 3:
                break
    return move.model_copy(update={"citations": cites, "grounding": None})


def question_move(q: Question, lang: str, reason: Reason, topic: str | None = None) -> Move:
    """A bank question asked as a follow-up (a ladder step)."""
    return Move(kind="follow_up", question_id=q.id, text=q.question.get(lang), topic=topic or q.topic,
                difficulty=q.difficulty, target=TargetRef(kind="question", question_id=q.id), reason=reason,
                grounding=Grounding(note=q.rubric[0].note, query=q.question.zh, topic=topic or q.topic))


def follow_up_move(q: Question, i: int, lang: str, reason: Reason, question_id: str | None = None) -> Move:
    f = q.follow_ups[i]
    text = f.question.get(lang)
    return Move(kind="follow_up", question_id=question_id, text=text, topic=q.topic, difficulty=f.difficulty,
                target=TargetRef(kind="follow_up", question_id=q.id, follow_up=i), reason=reason,
                grounding=Grounding(note=f.note, query=text, topic=q.topic))


def probe_move(q: Question, point: KeyPoint, lang: str) -> Move:
    return Move(kind="follow_up", text=point.probe.get(lang), topic=q.topic, difficulty=q.difficulty,
                target=TargetRef(kind="probe", question_id=q.id, point_id=point.id), reason=Reason.MISSED,
                grounding=Grounding(note=point.note, query=point.point, topic=None))


def deeper_move(q: Question, asked: set[str], lang: str, min_difficulty: int | None = None,
                reason: Reason = Reason.DEEPER, skip: frozenset[str] = frozenset()) -> Move | None:
    """A harder authored follow-up of ``q`` not asked yet (nor in ``skip``: ids of follow-ups already answered)."""
    floor = q.difficulty if min_difficulty is None else min_difficulty - 1
    for i, f in enumerate(q.follow_ups):
        if f.difficulty > floor and f.question.get(lang) not in asked and f"{q.id}/f{i + 1}" not in skip:
            return follow_up_move(q, i, lang, reason)
    return None


def ladder_move(bank: dict[str, Question], ladder: Ladder, level: int, asked: set[str], lang: str) -> Move | None:
    """The first step of ``ladder`` at ``level`` or above that has not been asked."""
    reason = Reason.HARDER_KSANA if ladder.command == "ksana" else Reason.HARDER
    for step in ladder.steps:
        ref = TargetRef.parse(step)
        q = bank[ref.question_id]
        if ref.kind == "follow_up":
            f = q.follow_ups[ref.follow_up or 0]
            if f.difficulty >= level and f.question.get(lang) not in asked:
                move = follow_up_move(q, ref.follow_up or 0, lang, reason, question_id=q.id)
                return move.model_copy(update={"topic": KSANA}) if ladder.command == "ksana" else move
        elif q.difficulty >= level and q.question.get(lang) not in asked:
            return question_move(q, lang, reason, topic=KSANA if ladder.command == "ksana" else None)
    return None


def easier_move(bank: dict[str, Question], current: Question, asked: set[str], lang: str) -> Move | None:
    """Scaffold down one level: a bank question of the same topic one difficulty lower (else the closest lower one)
    that has not been asked — after an answer that did not get started, the foundation the question builds on."""
    easier = sorted((q for q in bank.values() if q.topic == current.topic and q.stage == "technical"
                     and q.difficulty < current.difficulty and q.id != current.id and q.question.get(lang) not in asked),
                    key=lambda q: (-q.difficulty, q.id))
    return question_move(easier[0], lang, Reason.SCAFFOLD) if easier else None


def harder_topic_move(bank: dict[str, Question], current: Question, level: int, asked: set[str], lang: str) -> Move | None:
    """Harder on the current topic: its own harder follow-ups, else a harder bank question of the topic."""
    move = deeper_move(current, asked, lang, min_difficulty=level)
    if move:
        return move
    same = sorted((q for q in bank.values() if q.topic == current.topic and q.stage == "technical"
                   and q.difficulty >= level and q.question.get(lang) not in asked), key=lambda q: (q.difficulty, q.id))
    return question_move(same[0], lang, Reason.HARDER) if same else None


def hint(question: str, points: list[KeyPoint], level: int, lang: str) -> tuple[str, int]:
    """The hint for the open ``question`` (a follow-up gets hints about the follow-up) at ``level`` — 1 a nudge
    toward the reasoning, 2 the concept behind its most important missing point, 3 the note section — and its
    deduction in points."""
    point = points[0]
    if level == 1:
        text = say("hint_reasoning", lang, question=question)
    elif level == 2:
        probe = point.probe.get(lang)
        text = say("hint_concept", lang, probe=probe) if probe and probe != question else \
            say("hint_concepts", lang, concepts="、".join(t for g in point.keywords for t in g[:1] if not t.startswith("re:")))
    else:
        text = say("hint_note", lang, note=point.note)
    return text, HINT_DEDUCTIONS[level - 1]


def next_hint_cost(used: int) -> int | None:
    """What the next hint would deduct (None when none is left)."""
    return HINT_DEDUCTIONS[used] if used < len(HINT_DEDUCTIONS) else None


def _model_text(model, prompt: str, stream: TextStream | None, deadline: float | None = None) -> str:
    """The model's reply (at most ``MAX_TOKENS["followup"]`` tokens); streamed piece by piece into ``stream`` when
    one is given, and cut off when the turn's ``deadline`` (``time.monotonic``) passes."""
    model = bounded(model, "followup")
    if stream is None:
        reply = model.invoke(prompt)
        return reply.text if hasattr(reply, "text") else str(reply)
    text = ""
    pieces = model.stream(prompt)
    try:
        for chunk in pieces:
            piece = chunk.text if isinstance(chunk.text, str) else ""
            text += piece
            stream.push(piece)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("the turn's deadline passed while the follow-up was being written")
    finally:
        pieces.close()  # stops reading: the server sees the connection go
    return text


def phrase_with_model(model, move: Move, passages: list[Passage], answer: str, lang: str,
                      addresses: set[str], stream: TextStream | None = None, deadline: float | None = None) -> Move:
    """Let the model reword a follow-up from retrieved passages (streamed into ``stream``); keep the
    authored one if it fails or cites sections that do not exist."""
    from interviewer.prompts import fence, render

    numbered = "\n".join(f"[{i + 1}] {p.address}\n{p.text[:500]}" for i, p in enumerate(passages[:3]))
    prompt = render("followup", question=move.text, passages=numbered, answer=fence(answer[:1500]),
                    lang=language_name(lang))
    try:
        text = _model_text(model, prompt, stream, deadline)
    except Exception:
        return move
    refs = {int(n) for n in CITATION_MARK.findall(text)}
    cites = [{"source": passages[n - 1].source, "heading": passages[n - 1].heading} for n in sorted(refs)
             if 0 < n <= len(passages)]
    body = CITATION_MARK.sub("", text).strip()
    if not body or len(body) > 400 or not all_exist(cites, addresses):
        return move
    if not re.search(r"[?？]", body) or is_injection(clean_text(body)):  # a question, not an announcement or an order
        return move
    return move.model_copy(update={"text": body, "citations": cites, "worded_by": "model"})
