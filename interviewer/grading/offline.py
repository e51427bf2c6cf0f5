"""The offline rubric grader (no model): decides each key point from the answer's own sentences (concept-group
keywords, phrasing similarity, meaning), takes the wrong claims ``claims.py`` finds, and caps gaming (instructions to
the grader, bare keyword lists, parroting). Also owns the score formula and the feedback text every grader shares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from interviewer import quantities as numeric
from interviewer.bands import band_of
from interviewer.grading import answer_text as at
from interviewer.grading import calibration, claims, cross, meaning, relevance
from interviewer.grading.contract import Grade, MisconceptionFound, PointResult, Target
from interviewer.knowledge.bank import REGEX_TERM, KeyPoint, NumericCheck
from interviewer.knowledge.citation import Citation
from interviewer.messages import say

MISCONCEPTION_PENALTY = 12
PAIR_CREDIT = 0.8  # all concept groups named across two adjacent sentences
PARTIAL_CREDIT = 0.2  # at least half of the groups named in one sentence
QUOTE_AT = 0.5  # a point below this is not shown with a quote: half a keyword match is no evidence that it was said
PHRASING_MATCH = 0.55  # character-bigram similarity with an authored phrasing
SCORE_POWER = 0.85  # score = 100 × coverage^power


# ---------------------------------------------------------------- offline rubric grader

@lru_cache(maxsize=16384)
def _term_form(term: str) -> str | re.Pattern:
    """A rubric term as matched: its clean text, or a whole-word pattern for a short ASCII word ("" never matches)."""
    if term.startswith(REGEX_TERM):  # a pattern term only counts where quality points read the answer as written
        return ""
    term = at.clean_text(term)
    if term.isascii() and re.fullmatch(r"[a-z0-9_.+-]+", term) and len(term) <= 4:
        return re.compile(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])")
    return term


def _term_in(term: str, text: str) -> bool:
    form = _term_form(term)
    return bool(form) and form in text if isinstance(form, str) else form.search(text) is not None


def _groups_matched(point: KeyPoint, text: str) -> float:
    hits = sum(1 for group in point.keywords if any(_term_in(t, text) for t in group))
    return hits / len(point.keywords)


def _phrasing_similarity(point: KeyPoint, text: str) -> float:
    best, b = 0.0, at.bigrams(text)
    for p in [point.point, point.point_en, *point.phrasings]:
        if p:
            a = at.bigrams(p)
            if a and b:
                best = max(best, 2 * len(a & b) / (len(a) + len(b)) * min(1.0, len(b) / max(1, len(a))) ** 0.25)
    return best


def judge_point(point: KeyPoint, sents: list[at.Sentence]) -> PointResult:
    """Coverage of one key point: the best sentence (or pair of adjacent sentences) of the answer."""
    best, evidence = 0.0, ""
    for i, s in enumerate(sents):
        frac = _groups_matched(point, s.clean)
        cover = 1.0 if frac == 1 else 0.0
        if not cover and i + 1 < len(sents) and _groups_matched(point, s.clean + " " + sents[i + 1].clean) == 1:
            cover = PAIR_CREDIT
        if not cover and frac >= 0.5 and len(point.keywords) > 1:
            cover = PARTIAL_CREDIT
        if cover < 1 and _phrasing_similarity(point, s.clean) >= PHRASING_MATCH:
            cover = max(cover, PAIR_CREDIT)
        if cover > best:
            best, evidence = cover, s.raw
    return PointResult(point_id=point.id, point=point.point, covered=best, evidence=evidence[:300],
                       note=point.note, weight=point.weight)


def judge_quality(point: KeyPoint, sents: list[at.Sentence]) -> PointResult:
    """An open question's quality point (``examples_needed``): different examples of good content anywhere in the
    answer — a keyword group named, or a different string found by a ``re:`` term — against the number needed.
    The sentences that brought new examples are the evidence."""
    found: set[str] = set()
    evidence: list[str] = []
    for s in sents:
        new = set()
        for i, group in enumerate(point.keywords):
            for term in group:
                if term.startswith(REGEX_TERM):
                    new |= {f"re{i}:{m.group(0).lower()}" for m in re.finditer(term[len(REGEX_TERM):], s.raw)}
                elif _term_in(term, s.clean):
                    new.add(f"group{i}")
        if new - found:
            found |= new
            evidence.append(s.raw)
    covered = min(1.0, len(found) / point.examples_needed)
    return PointResult(point_id=point.id, point=point.point, covered=round(covered, 2),
                       evidence=" … ".join(evidence)[:300] if covered else "", note=point.note, weight=point.weight)


def point_span_features(target: Target, point: KeyPoint, reading: Reading,
                        read: meaning.MeaningReading | None = None) -> tuple[list[meaning.Span], np.ndarray]:
    """The spans of the answer and their features for ``point`` (see ``meaning.py``)."""
    read = read or meaning.MeaningReading.of(reading.content)
    if not read.spans:
        return [], np.zeros((0, len(meaning.FEATURES)), dtype=np.float32)
    enc = meaning.ENCODER
    point_vecs = enc.vectors([point.point, *point.phrasings[:4]], cache=True)
    question_vec = enc.vectors([target.question or point.point], cache=True)[0]
    return read.spans, meaning.features(point, read.spans, read.vecs, point_vecs, question_vec,
                                        lambda t: _groups_matched(point, t), lambda t: _phrasing_similarity(point, t),
                                        "dont_know" in reading.flags)


def judge_by_meaning(target: Target, point: KeyPoint, reading: Reading, scorer: meaning.Scorer,
                     read: meaning.MeaningReading | None = None) -> tuple[PointResult, float, np.ndarray]:
    """Coverage from the trained scorer: the best span's P, thresholded; that span is the evidence. Also that P and
    every span's P."""
    spans, x = point_span_features(target, point, reading, read)
    covered, evidence, prob, p = 0.0, "", 0.0, np.zeros(len(spans))
    if spans:
        p = scorer.probability(x)
        best = int(p.argmax())
        prob = float(p[best])
        covered = scorer.coverage(prob)
        if covered == 1.0 and meaning.HEDGE.search(spans[best].raw):
            covered = 0.5  # a hedged statement earns partial credit at most
        evidence = spans[best].raw if covered else ""
    return PointResult(point_id=point.id, point=point.point, covered=covered, evidence=evidence[:300],
                       note=point.note, weight=point.weight), prob, p


@dataclass
class Reading:
    """An answer read against a target: the sentences that count and the gaming flags."""

    content: list[at.Sentence]
    flags: list[str] = field(default_factory=list)


def read_answer(answer: str, target: Target) -> Reading:
    sents = at.sentences(answer)
    flags: list[str] = []
    if at.TAG.search(answer):
        flags.append("html")
    content = []
    for s in sents:
        if at.is_injection(s.clean):
            flags.append("injection")
        elif target.question and target.numeric is None and at.is_parroting(s.clean, at.clean_text(target.question)):  # a computation restates its inputs
            flags.append("parroting")
        else:
            content.append(s)
    text = " ".join(s.raw for s in content)
    if content and target.numeric is None and at.looks_like_keyword_list(text):
        flags.append("keyword_list")
    if at.says_dont_know(answer):
        flags.append("dont_know")
    return Reading(content, sorted(set(flags)))


@dataclass
class Judgement:
    """Everything read from one answer before a band is decided."""

    reading: Reading
    points: list[PointResult]
    wrong: list[MisconceptionFound]
    numeric_note: str = ""
    signals: calibration.Signals | None = None  # for the calibrator (only when asked for)


def judge_answer(target: Target, answer: str, scorer: meaning.Scorer | None = None, signals: bool = False) -> Judgement:
    """The points (from the rubric's words and phrasings, or by meaning given a ``scorer``) and wrong claims; with
    ``signals``, also the answer-level signals the calibrator reads (this runs the e5 encoder)."""
    reading = read_answer(answer, target)
    wrong = claims.wrong_claims(reading.content, target)
    keyword = [judge_quality(p, reading.content) if p.examples_needed else judge_point(p, reading.content) for p in target.points]
    points, numeric_note = settle_points(target, answer, reading, keyword, wrong)
    by_meaning = scorer or (meaning.load_scorer() if signals else None)
    if by_meaning is None:
        return Judgement(reading, points, wrong, numeric_note)
    read = meaning.MeaningReading.of(reading.content, calibration.MAX_SENTENCES)
    judged = [_quality_with_p(p, reading) if p.examples_needed else
              judge_by_meaning(target, p, reading, by_meaning, read) for p in target.points]
    meaning_points, _ = settle_points(target, answer, reading, [r for r, _, _ in judged], wrong)
    found = signals_of(target, answer, reading, read, points, meaning_points, judged, wrong) if signals else None
    return Judgement(reading, meaning_points if scorer else points, wrong, numeric_note, found)


def grade_offline(target: Target, answer: str, lang: str | None = None, scorer: meaning.Scorer | None = None,
                  calibrated: bool = True) -> Grade:
    """The deterministic grader (no LLM). Each point from the rubric's words and phrasings (or, given a ``scorer``,
    by meaning: ``meaning.py``); the band, when ``calibrated`` and a calibrator ships, from the whole answer
    (``calibration.py``), with the score kept inside that band. ``calibrated=False`` is the cheap keyword reading
    (no encoder), for checks that only need point coverage."""
    answer = at.normalize_answer(answer)
    lang = lang or at.language(answer)
    calibrator = calibration.load_calibrator() if calibrated and scorer is None and target.numeric is None else None
    try:
        judged = judge_answer(target, answer, scorer, signals=calibrator is not None)
    except Exception:  # noqa: BLE001 - the encoder failing must not lose the grade: the keyword reading stands
        if scorer is not None:
            raise
        judged = judge_answer(target, answer)
    points, wrong, flags = judged.points, judged.wrong, judged.reading.flags
    score = penalised_score(points, wrong)
    band = band_of(score)
    note = judged.numeric_note
    if calibrator is not None and judged.signals is not None:
        x = judged.signals.vector()
        off_topic = relevance.off_topic(judged.signals.gate_vector())
        keyword_band, band = band, calibration.calibrated_band(calibrator, x, band, flags, bool(wrong), off_topic)
        score = calibration.within_band(score, band)
        if off_topic:  # about another topic, it covers nothing: none of its sentences is evidence for a point here
            flags = sorted({*flags, "off_topic"})
            points = [uncovered(p) for p in points]
        why = calibration.band_note(keyword_band, band, judged.signals.hedged, judged.signals.chars, off_topic, lang)
        note = " ".join(part for part in (note, why) if part)
    grade = Grade(question_id=target.question_id, score=score, band=band, points=points,
                  misconceptions=wrong, grader="offline", flags=flags,
                  confidence=_offline_confidence(score, points, flags))
    grade = finish(grade, lang)
    return grade.model_copy(update={"feedback": f"{note} {grade.feedback}"}) if note else grade


def _quality_with_p(point: KeyPoint, reading: Reading) -> tuple[PointResult, float, np.ndarray]:
    result = judge_quality(point, reading.content)
    return result, result.covered, np.zeros(0)


def settle_points(target: Target, answer: str, reading: Reading, points: list[PointResult],
                  wrong: list[MisconceptionFound]) -> tuple[list[PointResult], str]:
    """Judged points after the answer-level rules: a keyword list earns nothing, the numeric point is decided by
    computation, a sentence stating a wrong claim is no evidence, and a point below QUOTE_AT quotes nothing."""
    if "keyword_list" in reading.flags:
        points = [uncovered(p) for p in points]
    numeric_note = ""
    if target.numeric is not None:
        points, numeric_note = judge_number(target.numeric, answer, points)
    points = [_not_evidence_of(p, wrong) for p in points]
    points = [p.model_copy(update={"evidence": ""}) if p.covered < QUOTE_AT and p.evidence else p for p in points]
    return points, numeric_note


def signals_of(target: Target, answer: str, reading: Reading, read: meaning.MeaningReading, keyword: list[PointResult],
               by_meaning_points: list[PointResult], judged: list[tuple[PointResult, float, np.ndarray]],
               wrong: list[MisconceptionFound]) -> calibration.Signals:
    """What the calibrator reads. Length counts only the sentences that state some point at least in part (by
    words or by meaning), so padding an answer with filler never makes it look more complete."""
    span_p = [p[:read.singles] for _, _, p in judged if len(p)]
    best = np.max(np.stack(span_p), axis=0) if span_p else np.zeros(read.singles)
    relevant = [s for i, s in enumerate(reading.content[:read.singles])
                if best[i] >= calibration.RELEVANT_P or any(judge_point(p, [s]).covered > 0 for p in target.points)]
    content = " ".join(s.raw for s in relevant)
    answer_vec = relevance.answer_vector(read.vecs, read.singles)
    rel_q, rel_ref = relevance.cosines(answer_vec, (target.question, target.reference or " ".join(p.point for p in target.points)))
    return calibration.Signals(
        kind=target.kind, weights=np.array([p.weight for p in keyword]), kw_covered=np.array([p.covered for p in keyword]),
        me_probability=np.array([pr for _, pr, _ in judged]), me_covered=np.array([p.covered for p in by_meaning_points]),
        kw_score=penalised_score(keyword, wrong), me_score=penalised_score(by_meaning_points, wrong), wrong=len(wrong),
        hedged=sum(1 for s in reading.content if meaning.HEDGE.search(s.raw)), sentences=len(reading.content),
        chars=len(content), dont_know="dont_know" in reading.flags, keyword_list="keyword_list" in reading.flags,
        parroting="parroting" in reading.flags, english=at.language(answer) == "en", rel_question=rel_q, rel_reference=rel_ref,
        topic_margin=relevance.topic_margin(answer_vec, target.question_id, target.topic), cross=cross.expected_band(
            target, answer), map_margins=relevance.map_margins(read.vecs[:read.singles], answer_vec, target))


def judge_number(check: NumericCheck, answer: str, points: list[PointResult]) -> tuple[list[PointResult], str]:
    """The numeric point decided by computation: the candidate's number and unit against the expected value
    (within the tolerance; a known slip such as a forgotten factor 2 earns half); the checker's words as feedback."""
    result = numeric.check_numeric(answer, check.expected, check.dimension, check.tolerance, check.factors or None)
    covered = {"correct": 1.0, "off_by_factor": 0.5}.get(result.status, 0.0)
    evidence = result.quantity.text if result.quantity is not None and covered else ""
    out = [p.model_copy(update={"covered": covered, "evidence": evidence}) if p.point_id == check.point else p for p in points]
    return out, "数值：" + result.feedback


def uncovered(point: PointResult) -> PointResult:
    """The point as not covered: no credit and no quote."""
    return point.model_copy(update={"covered": 0.0, "evidence": ""})


def _not_evidence_of(point: PointResult, wrong: list[MisconceptionFound]) -> PointResult:
    """A sentence that states a wrong claim earns no point: it is never evidence for both."""
    if point.point_id in {m.point_id for m in wrong}:  # a wrong number voids the point it answers, quoted or not
        return uncovered(point)
    if point.evidence and any(m.evidence and (m.evidence in point.evidence or point.evidence in m.evidence)
                              for m in wrong if not m.point_id):
        return uncovered(point)
    return point


def weighted_coverage(points: list[PointResult]) -> float:
    """The share of the rubric's weight the answer covers (0–1)."""
    total = sum(p.weight for p in points) or 1.0
    return sum(p.weight * p.covered for p in points) / total


def coverage_score(points: list[PointResult]) -> float:
    """100 × (weighted coverage)^SCORE_POWER, computed in code from the rubric weights."""
    return 100 * weighted_coverage(points) ** SCORE_POWER


def penalised_score(points: list[PointResult], wrong: list[MisconceptionFound]) -> int:
    """The score every grader gives: coverage, less a penalty per wrong claim, and at most 59 with any wrong claim."""
    score = coverage_score(points) - MISCONCEPTION_PENALTY * len(wrong)
    if wrong:
        score = min(score, 59)
    return int(round(max(0.0, min(100.0, score))))


def _offline_confidence(score: int, points: list[PointResult], flags: list[str]) -> float:
    edges = [30, 60, 85]
    margin = min(abs(score - e) for e in edges)
    partial = sum(1 for p in points if 0 < p.covered < 1) / max(1, len(points))
    conf = 0.55 + 0.35 * min(1.0, margin / 12) - 0.2 * partial
    return round(max(0.2, min(0.95, conf)), 2)


# ---------------------------------------------------------------- feedback and citations

def finish(grade: Grade, lang: str) -> Grade:
    """Fill feedback and citations from the points and misconceptions."""
    missed = [p for p in grade.points if p.covered < 0.75]
    cites: list[Citation] = []
    for p in missed:
        c = Citation.from_note(p.note)
        if c not in cites:
            cites.append(c)
    return grade.model_copy(update={"citations": cites, "feedback": feedback_text(grade, missed, lang)})


def feedback_text(grade: Grade, missed: list[PointResult], lang: str) -> str:
    covered = [p for p in grade.points if p.covered >= 0.75]
    parts: list[str] = []
    if "injection" in grade.flags:
        parts.append(say("fb_injection", lang))
    if "keyword_list" in grade.flags:
        parts.append(say("fb_keyword_list", lang))
    if "parroting" in grade.flags and not covered:
        parts.append(say("fb_parroting", lang))
    if covered:  # a count: a point's statement may say more than the answer did, and each point quotes its own evidence
        parts.append(say("fb_covered", lang, n=len(covered), total=len(grade.points)))
    if missed:
        parts.append(say("fb_missing", lang, names="；".join(p.point for p in missed[:4])))
    for m in grade.misconceptions[:2]:
        parts.append(say("fb_wrong", lang, claim=m.claim, correction=m.correction, source=m.source))
    if grade.citations:
        parts.append(say("fb_reread", lang, where="、".join(c.address for c in grade.citations[:3])))
    return " ".join(parts) or say("fb_empty", lang)
