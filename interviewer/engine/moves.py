"""Choosing the next move and phrasing it: probes, deeper follow-ups, harder KsanaLLM questions, hints.

The decision is code on evidence (rubric coverage of the open question, the follow-up budget, the
stage's time budget); a model, when configured, only rewrites the wording of a follow-up from the
retrieved passages, and a rewrite whose citations are not in the index is replaced by the authored
probe. Every follow-up carries citations (``source``, ``heading``) of notes that exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from interviewer.engine.prefetch import CITATION_MARK, TextStream
from interviewer.grading.answer_text import clean_text, is_injection
from interviewer.grading.offline import Citation, Grade
from interviewer.knowledge.bank import KeyPoint, Question
from interviewer.search.retrieval import Passage, Retriever

HINT_DEDUCTIONS = (5, 10, 15)  # per level; cumulative
STRONG = 85
KSANA = "ksanallm"


@dataclass
class Move:
    """The interviewer's next question, with how to grade it and where it comes from."""

    kind: str  # "main" or "follow_up"
    question_id: str | None  # bank id; None for generated follow-ups
    text: str
    topic: str
    difficulty: int
    target: list  # how to rebuild the grading target: ["question", qid] | ["probe", qid, pid] | ["follow_up", qid, i]
    citations: list[dict] = field(default_factory=list)
    reason: str = ""

    def to_state(self) -> dict:
        return {"kind": self.kind, "question_id": self.question_id, "text": self.text, "topic": self.topic,
                "difficulty": self.difficulty, "target": self.target, "citations": self.citations,
                "reason": self.reason}


def cite(note: str) -> dict:
    return Citation.from_note(note).model_dump()


def grounding(retriever: Retriever | None, point_text: str, answer: str, note: str, topic: str | None = None) -> list[dict]:
    """Citations for a follow-up: the authored note section first, then what retrieval finds for
    the missed point in the light of what the candidate said (only sections that exist). The dense half
    embeds the point alone (its embedding is reused whenever that point is probed again); the lexical
    half also reads the candidate's words."""
    cites = [cite(note)]
    if retriever is None:
        return cites
    query = f"{point_text} {answer[:200]}"
    for p in retriever.search(query, k=3, dense_query=point_text):
        c = {"source": p.source, "heading": p.heading}
        if c not in cites and (p.origin == "own" or not topic or p.topic == topic or len(cites) < 2):
            cites.append(c)
        if len(cites) >= 3:
            break
    return cites


def missed_points(grade: Grade, question_points: list[KeyPoint]) -> list[KeyPoint]:
    """Key points not covered, heaviest first."""
    covered = {p.point_id: p.covered for p in grade.points}
    missed = [p for p in question_points if covered.get(p.id, 0) < 0.75]
    return sorted(missed, key=lambda p: -p.weight)


def probe_move(q: Question, point: KeyPoint, lang: str, retriever: Retriever | None, answer: str) -> Move:
    return Move("follow_up", None, point.probe.get(lang), q.topic, q.difficulty, ["probe", q.id, point.id],
                grounding(retriever, point.point, answer, point.note, None), reason="missed:" + point.id)


def deeper_move(q: Question, asked: set[str], lang: str, retriever: Retriever | None, answer: str,
                min_difficulty: int | None = None) -> Move | None:
    """A harder authored follow-up of ``q`` not asked yet."""
    floor = q.difficulty if min_difficulty is None else min_difficulty - 1
    for i, f in enumerate(q.follow_ups):
        text = f.question.get(lang)
        if f.difficulty > floor and text not in asked:
            cites = grounding(retriever, text, answer, f.note, q.topic)
            return Move("follow_up", None, text, q.topic, f.difficulty, ["follow_up", q.id, i], cites,
                        reason="deeper")
    return None


def harder_ksana_move(bank: dict[str, Question], level: int, asked: set[str], lang: str,
                      retriever: Retriever | None) -> Move | None:
    """A KsanaLLM question at ``level`` or above (4 = a source-level question's harder follow-up)."""
    ksana = [q for q in bank.values() if q.topic == KSANA and q.stage == "technical"]
    for want in range(level, 5):
        for q in sorted(ksana, key=lambda x: x.id):
            if want <= 3 and q.difficulty == want and q.question.get(lang) not in asked:
                return Move("follow_up", q.id, q.question.get(lang), KSANA, q.difficulty, ["question", q.id],
                            grounding(retriever, q.question.zh, "", q.rubric[0].note, KSANA), reason="harder_ksana")
            if want == 4 and q.difficulty == 3:
                move = deeper_move(q, asked, lang, retriever, "", min_difficulty=4)
                if move:
                    move.question_id, move.reason = q.id, "harder_ksana"
                    return move
    return None


def harder_topic_move(bank: dict[str, Question], current: Question, level: int, asked: set[str], lang: str,
                      retriever: Retriever | None) -> Move | None:
    """Harder on the current topic: its own harder follow-ups, else a harder bank question of the topic."""
    move = deeper_move(current, asked, lang, retriever, "", min_difficulty=level)
    if move:
        return move
    same = sorted((q for q in bank.values() if q.topic == current.topic and q.stage == "technical"
                   and q.difficulty >= level and q.question.get(lang) not in asked), key=lambda q: (q.difficulty, q.id))
    if same:
        q = same[0]
        return Move("follow_up", q.id, q.question.get(lang), q.topic, q.difficulty, ["question", q.id],
                    grounding(retriever, q.question.zh, "", q.rubric[0].note, q.topic), reason="harder")
    return None


def hint(q: Question, points: list[KeyPoint], level: int, lang: str) -> tuple[str, int]:
    """The hint at ``level`` (1 restate, 2 concept, 3 note section) and its deduction in points."""
    zh = lang != "en"
    point = points[0] if points else q.rubric[0]
    if level == 1:
        text = (f"换个问法：{q.question.zh} 可以从「它解决什么问题 → 怎么做到 → 代价是什么」三步来答。" if zh else
                f"Put differently: {q.question.get('en')} Try: what problem it solves → how → what it costs.")
    elif level == 2:
        concepts = "、".join(g[0] for g in point.keywords)
        text = (f"提示：想想这几个概念之间的关系：{concepts}。" if zh else f"Hint: think about how these relate: {concepts}.")
    else:
        text = (f"提示：这部分在笔记 {point.note}。" if zh else f"Hint: this is in the notes at {point.note}.")
    return text, HINT_DEDUCTIONS[level - 1]


def valid_citations(cites: list[dict], addresses: set[str]) -> bool:
    """Every citation names a section that exists in the index."""
    return bool(cites) and all(
        f"{c.get('source')} § {c.get('heading')}" in addresses
        or any(a.startswith(f"{c.get('source')} § {c.get('heading')} › ") for a in addresses)
        for c in cites)


def _model_text(model, prompt: str, stream: TextStream | None) -> str:
    """The model's reply; streamed piece by piece into ``stream`` when one is given."""
    if stream is None:
        reply = model.invoke(prompt)
        return reply.text if hasattr(reply, "text") else str(reply)
    text = ""
    for chunk in model.stream(prompt):
        piece = chunk.text if isinstance(chunk.text, str) else ""
        text += piece
        stream.push(piece)
    return text


def phrase_with_model(model, move: Move, passages: list[Passage], answer: str, lang: str,
                      addresses: set[str], stream: TextStream | None = None) -> Move:
    """Let the model reword a follow-up from retrieved passages (streamed into ``stream``); keep the
    authored one if it fails or cites sections that do not exist."""
    from interviewer.prompts import fence, render

    numbered = "\n".join(f"[{i + 1}] {p.address}\n{p.text[:500]}" for i, p in enumerate(passages[:3]))
    prompt = render("followup", question=move.text, passages=numbered, answer=fence(answer[:1500]),
                    lang="中文" if lang == "zh" else "English")
    try:
        text = _model_text(model, prompt, stream)
    except Exception:
        return move
    refs = {int(n) for n in CITATION_MARK.findall(text)}
    cites = [{"source": passages[n - 1].source, "heading": passages[n - 1].heading} for n in sorted(refs)
             if 0 < n <= len(passages)]
    body = CITATION_MARK.sub("", text).strip()
    if not body or len(body) > 400 or not valid_citations(cites, addresses):
        return move
    if not re.search(r"[?？]", body) or is_injection(clean_text(body)):  # a question, not an announcement or an order
        return move
    return Move(move.kind, move.question_id, body, move.topic, move.difficulty, move.target, cites,
                reason=move.reason + "+model")
