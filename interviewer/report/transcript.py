"""The graded transcript: the model every export is written from, its summary and study plan, and reading a
JSON export back.

One transcript model serves the UI, the CLI, the exports (``report/exporters``) and the eval. The JSON export
re-imports (``load_transcript``) with validation, so a report can be re-rendered or compared later. No
secret is ever written: exports carry only what is listed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from interviewer.bands import WEAK, band_of
from interviewer.grading.contract import Grade
from interviewer.knowledge.citation import address_of

VERSION = 1
MAX_EXPORT_NAME_BYTES = 200  # file systems refuse names over 255 bytes
STAGE_NAMES = {"intro": "自我介绍", "technical": "技术深挖", "project": "项目讲解", "reverse": "反问", "drill": "快问快答"}


class TranscriptError(ValueError):
    """A transcript file that cannot be read."""


class Turn(BaseModel):
    stage: str
    question_id: str | None
    target_id: str = ""  # what it was graded against: kv_cache, kv_cache/f1, kv_cache/<point id>
    kind: Literal["main", "follow_up"]
    topic: str
    difficulty: int
    question: str
    citations: list[dict[str, str]] = Field(default_factory=list)
    answer: str
    seconds: float = Field(ge=0)
    self_rating: Literal["流畅", "基本", "卡顿", "不会"] | None = None
    hints_used: int = Field(default=0, ge=0)
    commands: list[str] = Field(default_factory=list)
    grade: Grade
    reference_answer: str = ""
    reverse_log: list[dict[str, Any]] = Field(default_factory=list)


class StudyItem(BaseModel):
    question: str
    band: str
    score: int
    notes: list[str]


class Summary(BaseModel):
    score: int
    band: str
    stages: dict[str, int]
    topics: dict[str, int]
    weak_topics: list[str]
    study_plan: list[StudyItem]
    answered: int
    self_vs_grader: list[dict[str, str]] = Field(default_factory=list)


class Transcript(BaseModel):
    version: int = VERSION
    session_id: str
    model: str
    lang: Literal["zh", "en"] = "zh"
    plan: str = ""
    plan_title: str = ""
    turns: list[Turn]
    summary: Summary


def plan_title(plan_id: str, lang: str = "zh") -> str:
    """The plan's title for a report (its id if the plan cannot be loaded)."""
    from interviewer.knowledge.bank import KnowledgeError, load_plan

    try:
        return load_plan(plan_id).title.get(lang) if plan_id else ""
    except KnowledgeError:
        return plan_id


def _mean(values: list[int]) -> int:
    return int(round(sum(values) / len(values))) if values else 0


def summarize(turns: list[dict], lang: str = "zh") -> dict:
    """Totals from the per-turn grades: overall, by stage and topic, weak topics, and a study plan."""
    scores = [t["grade"]["score"] for t in turns]
    by_stage: dict[str, list[int]] = {}
    by_topic: dict[str, list[int]] = {}
    for t in turns:
        by_stage.setdefault(t["stage"], []).append(t["grade"]["score"])
        by_topic.setdefault(t["topic"], []).append(t["grade"]["score"])
    topics = {k: _mean(v) for k, v in by_topic.items()}
    plan = []
    for t in turns:
        if t["grade"]["band"] in WEAK:
            notes = [address_of(c) for c in t["grade"].get("citations", [])]
            notes = notes or [address_of(c) for c in t.get("citations", [])]
            plan.append({"question": t["question"], "band": t["grade"]["band"], "score": t["grade"]["score"],
                         "notes": notes})
    overall = _mean(scores)
    return {"score": overall, "band": band_of(overall), "stages": {k: _mean(v) for k, v in by_stage.items()},
            "topics": topics, "weak_topics": sorted(k for k, v in topics.items() if v < 60),
            "study_plan": plan, "answered": len(turns),
            "self_vs_grader": [{"question": t["question"], "self": t["self_rating"], "grader": t["grade"]["band"]}
                               for t in turns if t.get("self_rating")]}


def build_transcript(state: dict) -> Transcript:
    turns = state.get("turns", [])
    summary = state.get("summary") or summarize(turns, state.get("lang", "zh"))
    return Transcript(session_id=state["session_id"], model=state.get("model", "offline"), lang=state.get("lang", "zh"),
                      plan=state.get("plan_id", ""), plan_title=state.get("plan_title") or plan_title(state.get("plan_id", "")),
                      turns=[Turn.model_validate(t) for t in turns],
                      summary=Summary.model_validate(summary))


def load_transcript(path: Path) -> Transcript:
    """Read a JSON export back, with a clear error for a broken or foreign file."""
    try:
        raw = path.read_bytes()
        if len(raw) > 20_000_000:
            raise TranscriptError(f"{path.name}: file too large ({len(raw)} bytes)")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, 4300+ digit numbers
        raise TranscriptError(f"{path.name}: not a JSON transcript ({str(exc)[:200]})") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise TranscriptError(f"{path.name}: not a transcript of version {VERSION}")
    try:
        return Transcript.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise TranscriptError(f"{path.name}: field {where}: {first['msg']}") from exc


def safe_export_path(directory: Path, name: str) -> Path:
    """A file name inside ``directory``; path separators and traversal are refused."""
    clean = "".join(ch for ch in name if ch.isalnum() or ch in "-_.")
    if not clean or clean.startswith(".") or clean != name:
        raise TranscriptError(f"unsafe export name {name!r}")
    if len(clean.encode("utf-8")) > MAX_EXPORT_NAME_BYTES:
        raise TranscriptError(f"export name too long ({len(clean.encode('utf-8'))} bytes; at most {MAX_EXPORT_NAME_BYTES})")
    directory.mkdir(parents=True, exist_ok=True)
    return directory / clean
