"""Schemas and loaders for the knowledge base: question bank, interview plans, fact registry.

Owns the validated shape of everything under ``knowledge/`` (except the Markdown notes, which
``index.py`` chunks). A broken file raises :class:`KnowledgeError` naming the file, the question
id and the field, so an author can fix it without reading a traceback. The bank includes the questions generated
from numeric questions' fresh configurations (``variants_of``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator

from interviewer.bands import BANDS, Band  # noqa: F401  (Band is a field type below)
from interviewer.resources import KNOWLEDGE_DIR

Stage = Literal["intro", "technical", "project", "reverse", "drill"]


def compile_all(patterns: list[str]) -> list[str]:
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:  # a ValueError, so the loader names the file, the id and the field
            raise ValueError(f"pattern {p[:40]!r} does not compile: {exc}") from exc
    return patterns


Patterns = Annotated[list[str], Field(min_length=1), AfterValidator(compile_all)]
"""Regular expressions (applied case-insensitively); each must compile."""


class KnowledgeError(ValueError):
    """A knowledge file is missing or does not match its schema."""


class Text(BaseModel):
    """A text in Chinese (required) and English (optional)."""

    zh: str = Field(min_length=1)
    en: str = ""

    def get(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.zh


REGEX_TERM = "re:"  # a keyword term that is a regular expression (matched on the answer as written)


class KeyPoint(BaseModel):
    """One thing a complete answer must say, with how it may be phrased and where it is taught."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    point: str = Field(min_length=2, description="what must be said (zh)")
    point_en: str = ""
    weight: float = Field(default=1.0, gt=0)
    keywords: list[list[str]] = Field(
        min_length=1,
        description="concept groups: a sentence covers the point when it names one term of every group",
    )
    phrasings: list[str] = Field(default_factory=list, description="whole-sentence paraphrases, zh and en")
    note: str = Field(description="'file.md § Heading › Subheading' of the note section that teaches it")
    probe: Text = Field(description="follow-up asked when the candidate missed this point")
    examples_needed: int = Field(default=0, ge=0, description=(
        "an open question's quality (breadth, concrete detail): each keyword group is one example of good content "
        "and the point needs this many different ones anywhere in the answer — any of them, not a fixed list; "
        "a ``re:`` term counts every different string it finds. 0: the usual all-groups-in-one-sentence point"))

    @field_validator("keywords", mode="before")
    @classmethod
    def _numbers_are_terms(cls, groups: object) -> object:
        """A YAML number (``[2, 4]``) is a term as written, not a type error."""
        if isinstance(groups, list):
            return [[str(t) if isinstance(t, int | float) and not isinstance(t, bool) else t for t in g]
                    if isinstance(g, list) else g for g in groups]
        return groups

    @field_validator("keywords")
    @classmethod
    def _groups_not_empty(cls, groups: list[list[str]]) -> list[list[str]]:
        if any(not g or any(not t.strip() for t in g) for g in groups):
            raise ValueError("every keyword group needs at least one non-empty term")
        for t in (t for g in groups for t in g if t.startswith(REGEX_TERM)):
            try:
                re.compile(t[len(REGEX_TERM):])
            except re.error as exc:
                raise ValueError(f"keyword {t!r} is not a valid regex: {exc}") from exc
        return groups

    @field_validator("note")
    @classmethod
    def _note_shape(cls, note: str) -> str:
        if " § " not in note:
            raise ValueError("note must look like 'file.md § Heading' (with ' § ')")
        return note


class Misconception(BaseModel):
    """A wrong claim candidates make, recognised by regular expressions over the answer."""

    patterns: Patterns
    claim: str
    correction: str
    source: str
    unless: Annotated[list[str], AfterValidator(compile_all)] = []  # not a wrong claim where its context says this


FORMULAS = ("kv_cache_bytes", "decode_step_lower_bound_s", "ridge_point", "pp_bubble_fraction",
            "ring_allreduce_bytes_per_gpu", "weights_kv_crossover_batch")


class Variant(BaseModel):
    """A fresh configuration of a numeric question (``variants_of`` below turns it into a question)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$", description="suffix of the generated question id")
    label: Text = Field(description="the configuration as the question names it, e.g. Llama-3-8B（32 层、8 个 KV 头…）")
    inputs: dict[str, float] = Field(description="the formula's inputs that differ from the authored question's")
    source: str = Field(min_length=3, description="where the configuration's numbers come from")


class VariantTemplate(BaseModel):
    """How a variant is asked and answered: ``{label}``, each input name and ``{result}`` are filled in."""

    question: Text
    reference: Text
    variants: list[Variant] = Field(min_length=1)


class NumericCheck(BaseModel):
    """A question whose answer is a number: the grader computes it from ``inputs`` with ``formula``
    (``interviewer.quantities``), reads the candidate's number and unit, and grades ``point`` by it."""

    point: str = Field(description="the rubric point graded by computation")
    formula: Literal[FORMULAS]  # type: ignore[valid-type]
    inputs: dict[str, float]
    dimension: Literal["bytes", "seconds", "ratio", "count", "flops_per_byte", "flops", "bytes_per_second"]
    tolerance: float = Field(default=0.1, gt=0, lt=1)
    factors: dict[str, float] = Field(default_factory=dict, description="slip → multiplier, e.g. 忘了 K 和 V 两份: 0.5")
    fresh: VariantTemplate | None = Field(default=None, description="fresh configurations to drill it again")

    @property
    def expected(self) -> float:
        from interviewer import quantities as numeric

        return float(getattr(numeric, self.formula)(**self.inputs))


class FollowUp(BaseModel):
    """A harder follow-up question (difficulty + 1) with its own small rubric."""

    difficulty: int = Field(ge=1, le=4)
    question: Text
    note: str
    rubric: list[KeyPoint] = Field(min_length=1)
    numbers: list[NumericCheck] = Field(default_factory=list, description="computed numbers: one off by a known slip is wrong")


def _check_numeric(check: NumericCheck, point_ids: set[str]) -> None:
    if check.point not in point_ids:
        raise ValueError(f"numeric.point {check.point!r} is not a rubric point")
    try:
        check.expected  # noqa: B018 - the formula must accept the inputs
    except (TypeError, ValueError) as exc:
        raise ValueError(f"numeric: {check.formula}({check.inputs}) fails: {exc}") from exc


class Question(BaseModel):
    """One question of the bank."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    stage: Stage
    topic: str = Field(pattern=r"^[a-z0-9_]+$")
    difficulty: int = Field(ge=1, le=3)
    question: Text
    reference_answer: Text
    rubric_kind: Literal["keypoints", "checklist"] = "keypoints"
    rubric: list[KeyPoint] = Field(min_length=1)
    misconceptions: list[Misconception] = Field(default_factory=list)
    follow_ups: list[FollowUp] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="e.g. diagram, numbers, source")
    time_budget_s: int = Field(default=120, gt=0)
    numeric: NumericCheck | None = None
    variant_of: str | None = Field(default=None, description="the authored numeric question this one varies")

    @model_validator(mode="after")
    def _unique_point_ids(self) -> Question:
        ids = [p.id for p in self.rubric]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate key point ids in rubric: {ids}")
        for check, points in [(self.numeric, self.rubric)] + [(c, f.rubric) for f in self.follow_ups for c in f.numbers]:
            if check is not None:
                _check_numeric(check, {p.id for p in points})
        return self

    @property
    def total_weight(self) -> float:
        return sum(p.weight for p in self.rubric)


class Fact(BaseModel):
    """A checked claim of the fact registry."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    claim: str
    patterns: Patterns  # regexes that recognise the claim in free text
    unless: Annotated[list[str], AfterValidator(compile_all)] = []  # …not where its context (sentence and the one before, note line) says this
    verdict: Literal["confirmed", "corrected", "unsourced", "misleading"]
    correct: str = Field(description="the correct statement")
    source: str
    topic: str = ""


def read_yaml(path: Path) -> object:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{path.name}: cannot read YAML: {exc}") from exc


def validation_message(path: Path, item: object, exc: ValidationError, kind: str = "question") -> str:
    qid = item.get("id", "?") if isinstance(item, dict) else "?"
    fields = "; ".join(
        f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
    )
    return f"{path.name}: {kind} '{qid}': {fields}"


def load_list(path: Path, model: type[BaseModel], kind: str) -> list:
    """A YAML file holding a list of ``model`` items, each validated with a clear error."""
    data = read_yaml(path)
    if not isinstance(data, list):
        raise KnowledgeError(f"{path.name}: expected a list of {kind}s at the top level")
    items = []
    for item in data:
        try:
            items.append(model.model_validate(item))
        except ValidationError as exc:
            raise KnowledgeError(validation_message(path, item, exc, kind)) from exc
    return items


def load_questions_file(path: Path) -> list[Question]:
    """Load and validate one question file (a YAML list of questions)."""
    return load_list(path, Question, "question")


def load_bank(directory: Path | None = None) -> dict[str, Question]:
    """Load every ``*.yaml`` question file of a directory; ids must be unique across files."""
    directory = directory or KNOWLEDGE_DIR / "questions"
    bank: dict[str, Question] = {}
    for path in sorted(directory.glob("*.yaml")):
        for q in load_questions_file(path):
            if q.id in bank:
                raise KnowledgeError(f"{path.name}: question '{q.id}': duplicate id")
            bank[q.id] = q
    if not bank:
        raise KnowledgeError(f"{directory}: no questions found")
    return with_variants(bank)


# ---------------------------------------------------------------- numeric variants
# Each ``numeric.fresh`` variant of a question becomes a question of its own (``<id>_<variant id>``), so a candidate
# can drill the same computation again on another model or card. It keeps the authored method, rubric, factors and
# notes; its text, reference answer and result point are filled in from the template with the variant's inputs and
# the value the formula computes — never typed by hand. Every variant names the source of its configuration.

def _fill(template: str, values: dict[str, object], where: str) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise KnowledgeError(f"{where}: template field {exc} is not a variant input, label or result") from exc


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def variants_of(q: Question) -> list[Question]:
    """The generated questions of ``q`` (none when it has no fresh configurations)."""
    from interviewer.quantities import format_quantity

    fresh = q.numeric.fresh if q.numeric else None
    if fresh is None:
        return []
    out = []
    for v in fresh.variants:
        inputs = {**q.numeric.inputs, **v.inputs}
        check = q.numeric.model_copy(update={"inputs": inputs, "fresh": None})
        try:
            result = format_quantity(check.expected, check.dimension)
        except (TypeError, ValueError) as exc:
            raise KnowledgeError(f"question '{q.id}' variant '{v.id}': {check.formula}({inputs}) fails: {exc}") from exc
        where = f"question '{q.id}' variant '{v.id}'"
        binary = f"{check.expected / 2**30:.3g} GiB" if check.dimension == "bytes" else result
        text = {lang: {**{k: _number(x) for k, x in inputs.items()}, "label": v.label.get(lang), "result": result,
                       "result_gib": binary, "source": v.source} for lang in ("zh", "en")}
        value = next(p for p in q.rubric if p.id == check.point)
        said = f"{binary}（{result}）" if binary != result else result
        point = KeyPoint(id=value.id, point=f"结果：约 {said}", point_en=f"Result: about {said}", weight=value.weight,
                         keywords=[sorted({result, result.replace(" ", ""), binary, binary.replace(" ", "")})], phrasings=[],
                         note=value.note, probe=value.probe)
        out.append(q.model_copy(update={
            "id": f"{q.id}_{v.id}", "variant_of": q.id, "numeric": check, "tags": [*q.tags, "variant"],
            "question": Text(zh=_fill(fresh.question.zh, text["zh"], where), en=_fill(fresh.question.en, text["en"], where)),
            "reference_answer": Text(zh=_fill(fresh.reference.zh, text["zh"], where),
                                     en=_fill(fresh.reference.en, text["en"], where)),
            "rubric": [point if p.id == check.point else p for p in q.rubric]}))
    return out


def with_variants(bank: dict[str, Question]) -> dict[str, Question]:
    """The bank with every variant question added after its authored one."""
    out: dict[str, Question] = {}
    for qid, q in bank.items():
        out[qid] = q
        for v in variants_of(q):
            if v.id in bank or v.id in out:
                raise KnowledgeError(f"question '{qid}': variant id '{v.id}' is already a question")
            out[v.id] = v
    return out


def load_facts(path: Path | None = None) -> list[Fact]:
    """Load the fact registry."""
    return load_list(path or KNOWLEDGE_DIR / "facts.yaml", Fact, "fact")


@lru_cache(maxsize=4)
def default_bank() -> dict[str, Question]:
    """The built-in bank, loaded once per process."""
    return load_bank()


class StagePlan(BaseModel):
    """One stage of an interview plan."""

    id: Stage
    title: Text
    budget_s: int = Field(gt=0, description="the stage's time budget")
    questions: list[str] = Field(min_length=1)
    checklist: list[str] = Field(default_factory=list, description="what the candidate should cover, shown in the panel")
    candidate_asks: int = Field(default=0, ge=0, description="how many questions the candidate may ask here")


class Plan(BaseModel):
    """An interview script: stages in order, budgets, and the follow-up policy."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: Text
    answer_budget_s: int = Field(default=120, gt=0)
    follow_up_budget: int = Field(default=2, ge=0, description="follow-ups per main question")
    stages: list[StagePlan] = Field(min_length=1)

    def check_against(self, bank: dict[str, Question]) -> None:
        missing = [q for s in self.stages for q in s.questions if q not in bank]
        if missing:
            raise KnowledgeError(f"plan '{self.id}': unknown question ids {missing}")

    @property
    def main_count(self) -> int:
        return sum(len(s.questions) for s in self.stages)


def load_plan(plan_id: str, directory: Path | None = None) -> Plan:
    directory = directory or KNOWLEDGE_DIR / "plans"
    path = directory / f"{plan_id}.yaml"
    if not re.fullmatch(r"[a-z0-9_]+", plan_id) or not path.is_file():
        raise KnowledgeError(f"no interview plan named '{plan_id}'")
    try:
        return Plan.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise KnowledgeError(validation_message(path, {"id": plan_id}, exc, "plan")) from exc


def plan_ids(directory: Path | None = None) -> list[str]:
    directory = directory or KNOWLEDGE_DIR / "plans"
    return sorted(p.stem for p in directory.glob("*.yaml"))


def section_expansions(bank: dict[str, Question]) -> dict[str, str]:
    """Document expansion for retrieval: for each note section a rubric links to, the words a
    candidate would use for it (the key point, its phrasings and keyword variants). Only content points: the
    rubrics of open questions (self-introduction, project, reverse questions) and quality points name generic
    words (为什么, 因为, 问…) that would make their sections match any query."""
    out: dict[str, list[str]] = {}
    for q in bank.values():
        if q.stage not in ("technical", "drill") or q.variant_of:  # open questions' words are qualities, not content
            continue
        for p in [*q.rubric, *(k for f in q.follow_ups for k in f.rubric)]:
            if p.examples_needed:  # a quality point (breadth, "why" words) would match every query
                continue
            words = [p.point, *p.phrasings, *(t for group in p.keywords for t in group if not t.startswith(REGEX_TERM))]
            out.setdefault(p.note, []).append(" ".join(words))
    return {note: " ".join(parts) for note, parts in out.items()}
