"""Wrong claims in an answer: the question's misconceptions and the fact registry's wrong claims, matched per
sentence with negation handled ("不是减少 FLOPs" denies the claim) and ``unless`` contexts; and the slips in a number a
follow-up asks for (a forgotten factor 2, query heads for KV heads), checked against the number computed; and, whatever
the question, in a per-token KV size: a named model's (``knowledge/kv_sizes.yaml``), or one worked out as a product
without the factor 2 for K and V.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

from interviewer import quantities as numeric
from interviewer.grading import answer_text as at
from interviewer.grading.contract import MisconceptionFound, Target
from interviewer.knowledge.bank import Fact, Misconception, load_facts
from interviewer.knowledge.kv_sizes import load_kv_sizes


@lru_cache(maxsize=1)
def registry_misconceptions() -> tuple[Misconception, ...]:
    """Wrong claims from the fact registry (every verdict except confirmed)."""
    try:
        facts: list[Fact] = load_facts()
    except Exception:  # a missing registry must not stop grading
        return ()
    return tuple(Misconception(patterns=f.patterns, claim=f.claim, correction=f.correct, source=f.source, unless=f.unless)
                 for f in facts if f.verdict != "confirmed")


NEGATED = re.compile(r"(不是|并非|并不|而不是|不在于|不会|没有|并没有|不等于|不能说|\bnot|isn'?t|doesn'?t|rather than)\W{0,2}\w{0,3}\W{0,2}$", re.I)


def states(pattern: str, text: str) -> bool:
    """``text`` asserts what ``pattern`` matches: a match right after a negation ("不是减少 FLOPs") denies it."""
    return any(not NEGATED.search(text[max(0, m.start() - 14):m.start()]) for m in re.finditer(pattern, text, re.IGNORECASE))


@lru_cache(maxsize=4096)
def required_literals(pattern: str) -> tuple[str, ...]:
    """Literal runs that every match of ``pattern`` contains (from its top-level sequence: lookarounds, groups,
    branches and repeats end a run), lower-cased; () when the pattern cannot be read this way (no prefilter then)."""
    try:
        from re import _parser

        parsed = _parser.parse(pattern, re.IGNORECASE)
    except Exception:  # a private parser: when it moves, every pattern is simply tried
        return ()
    runs, run = [], ""
    for op, arg in [*parsed, (None, None)]:
        if op is _parser.LITERAL:
            run += chr(arg)
        elif run:
            runs.append(folded(run))
            run = ""
    return tuple(runs)


def folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def wrong_claims(sents: list[at.Sentence], target: Target) -> list[MisconceptionFound]:
    """Every wrong claim the answer states, for every grader: the misconceptions and the follow-up's number slips;
    where there are none, a slip in a per-token KV size (one error, one claim)."""
    return (find_misconceptions(sents, target) + number_slips(target, sents)) or kv_size_slips(sents) \
        or kv_formula_slips(sents)


def find_misconceptions(sents: list[at.Sentence], target: Target) -> list[MisconceptionFound]:
    """The wrong claims the answer states: a misconception's pattern in a sentence, not negated, and none of its
    ``unless`` contexts in that sentence or the one before. One finding per claim, quoting its first sentence."""
    found: list[MisconceptionFound] = []
    contexts = [" ".join(t.raw for t in sents[max(0, i - 1):i + 1]) for i in range(len(sents))]  # "…是 MHA。2×层数×头数…"
    whole = folded("\n".join(f"{s.clean}\n{s.raw}" for s in sents))  # a pattern missing a literal of its own is skipped
    for m in (*target.misconceptions, *registry_misconceptions()):
        live = [p for p in m.patterns if all(lit in whole for lit in required_literals(p))]
        for s, context in zip(sents, contexts) if live else ():
            if any(states(p, s.clean) or states(p, s.raw) for p in live) \
                    and not any(re.search(u, context, re.IGNORECASE) for u in m.unless):
                if all(f.claim != m.claim for f in found):
                    found.append(MisconceptionFound(claim=m.claim, correction=m.correction, source=m.source,
                                                    evidence=s.raw[:300]))
                break
    return found


def slip_in(text: str, expected: float, slips: dict[str, float], dimension: str = "bytes",
            tolerance: float = 0.1) -> numeric.NumericResult | None:
    """The number of ``text`` closest to ``expected`` when it is off by one of ``slips`` (name → stated / right, and
    by nothing else), or None: a right number, a missing one or one off for no known reason is no slip."""
    result = numeric.check_numeric(text, expected, dimension, tolerance, slips or None)
    ok = result.status == "off_by_factor" and result.factor_name in slips and result.quantity is not None
    return result if ok else None


def number_slips(target: Target, sents: list[at.Sentence]) -> list[MisconceptionFound]:
    """The numbers a follow-up asks for, computed: the candidate's number closest to the right one, when it is off
    by one of the check's known slips (a forgotten factor 2 for K and V, query heads taken for KV heads), is a wrong
    claim quoting its sentence. A right number, a missing one or one off for no known reason changes nothing here
    (the points are graded by meaning)."""
    found: list[MisconceptionFound] = []
    named: set[str] = set()  # one slip, one wrong claim (two checks can see the same slip)
    text = " ".join(s.raw for s in sents)
    for check in target.numbers if text else ():
        result = slip_in(text, check.expected, check.factors, check.dimension, check.tolerance)
        if result and result.factor_name not in named:
            named.add(result.factor_name)
            said = result.quantity.text.strip()
            right = (numeric.format_bytes_both(check.expected) if check.dimension == "bytes"
                     else numeric.format_quantity(check.expected, check.dimension))
            found.append(MisconceptionFound(
                claim=f"{said}：{result.factor_name}", correction=f"应约为 {right}",
                source=next(p.note for p in target.points if p.id == check.point),
                evidence=next((s.raw for s in sents if said in s.raw), said)[:300], point_id=check.point))
    return found


PER_TOKEN = re.compile(r"每\s*(?:个|一个)?\s*token|单个\s*token|一个\s*token|per[- ]token|/\s*token|each token", re.I)
NOT_16_BIT = re.compile(r"fp8|int8|int4|fp32|float32|e4m3|[48]\s*-?\s*bit|每层|per[- ]layer|每(?:张)?卡|per[- ]gpu|/\s*卡|tp\s*=?\s*\d",
                        re.I)


def kv_size_slips(sents: list[at.Sentence]) -> list[MisconceptionFound]:
    """A per-token KV size stated for a model of the registry (named in the sentence, else in the one before) that is off
    by one of that model's known slips is a wrong claim quoting its sentence. A right size, or one off for no known
    reason, changes nothing; sentences about 8-bit or 32-bit caches, one layer or one GPU are not read."""
    found: list[MisconceptionFound] = []
    claimed: set[str] = set()  # one model, one claim
    for i, s in enumerate(sents):
        if not PER_TOKEN.search(s.raw) or NOT_16_BIT.search(s.raw):
            continue
        named = [kv for kv in load_kv_sizes() if re.search(kv.names, s.raw, re.IGNORECASE)] or \
            [kv for kv in load_kv_sizes() if i and re.search(kv.names, sents[i - 1].raw, re.IGNORECASE)]
        for kv in [kv for kv in named if kv.model not in claimed]:
            result = slip_in(s.raw, kv.bytes, kv.slips)
            if result:
                claimed.add(kv.model)
                found.append(MisconceptionFound(
                    claim=f"{kv.model} 每 token KV {result.quantity.text.strip()}：{result.factor_name}",
                    correction=f"{kv.model} 每 token KV 应约为 {numeric.format_bytes_both(kv.bytes)}", source=kv.source,
                    evidence=s.raw[:300]))
                break
    return found


PRODUCT = re.compile(r"\d+(?:\.\d+)?(?:\s*(?:×|\*|x|乘以?)\s*\d+(?:\.\d+)?){2,}", re.I)
KV_WORDS = re.compile(r"kv|k\s*[/、和与]\s*v|键值", re.I)
LATENT = re.compile(r"mla|576|潜向量|latent|kv_lora", re.I)
NO_KV_TWO = "少乘了 K、V 两份的 2"


def kv_formula_slips(sents: list[at.Sentence]) -> list[MisconceptionFound]:
    """A per-token KV worked out as a product of the model's numbers with a single factor 2 (the bytes of a 16-bit
    element) and no second one for K and V — "40 × 5120 × 2，大概 400KB 一个 token" — when the sentence states that
    product in bytes (not twice it). The sentence and the one before must speak of KV per token; MLA's single latent,
    8-bit or 32-bit caches, one layer or one GPU are not read."""
    found: list[MisconceptionFound] = []
    for i, s in enumerate(sents):
        window = " ".join(t.raw for t in sents[max(0, i - 1):i + 1])
        if not (KV_WORDS.search(window) and PER_TOKEN.search(window)) or NOT_16_BIT.search(window) or LATENT.search(window):
            continue
        for m in PRODUCT.finditer(s.raw):
            factors = [float(f) for f in re.findall(r"\d+(?:\.\d+)?", m.group(0))]
            rest = sorted(f for f in factors if f != 2)
            if factors.count(2) != 1 or len(rest) < 2 or rest[-1] < 64 or rest[-2] < 8 or {1, 4} & set(rest):
                continue
            stated = math.prod(factors)  # what the product gives; right is twice that
            result = slip_in(s.raw[m.end():], 2 * stated, {NO_KV_TWO: 0.5})
            if result:
                found.append(MisconceptionFound(
                    claim=f"每 token KV {m.group(0)} = {result.quantity.text.strip()}：{NO_KV_TWO}",
                    correction=f"每 token KV = 2（K 和 V）× 层数 × KV 头数 × head_dim × 每元素字节数，这里约为 "
                               f"{numeric.format_bytes_both(2 * stated)}", source="facts-zh §E.4（KV 公式）",
                    evidence=s.raw[:300]))
                return found
    return found
