"""The engine's typed state: what a move is, what it is graded against, why it was chosen.

The LangGraph checkpoint keeps plain JSON (``State`` below), so a checkpoint written by an older version
still loads; the engine reads every entry through these models (``Move.load``) and writes them back with
``dump``. Routing decisions are values (:class:`Reason`, :class:`TargetRef`), never string prefixes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, Field, model_validator

from interviewer.grading.contract import TargetRef


class Reason(StrEnum):
    """Why a question is asked."""

    PLAN = "plan"  # the next main question of the plan
    MISSED = "missed"  # probe a key point the answer missed
    DEEPER = "deeper"  # a harder authored follow-up after a strong answer
    HARDER = "harder"  # the candidate asked /harder
    HARDER_KSANA = "harder_ksana"  # the candidate asked /harder ksana
    SCAFFOLD = "scaffold"  # one level easier on the same topic, after an answer that did not get started


class Grounding(BaseModel, frozen=True):
    """How to find the notes behind a follow-up: the authored section first, then a search for ``query``."""

    note: str
    query: str
    topic: str | None = None  # restrict extra citations to this topic (None: any)


class Move(BaseModel):
    """The interviewer's next question (or the end), with how to grade it and where it comes from."""

    kind: Literal["main", "follow_up", "end"]
    question_id: str | None = None
    text: str = ""
    topic: str = ""
    difficulty: int = 1
    target: TargetRef | None = None
    citations: list[dict] = Field(default_factory=list)
    reason: Reason = Reason.PLAN
    worded_by: Literal["bank", "model"] = "bank"
    grounding: Grounding | None = None  # set until the citations are found
    plan_pos: tuple[int, int] | None = None  # (stage, question) of a main question taken from the plan
    from_queue: bool = False  # a deferred question taken off the queue
    deferred: bool = False  # put back on the queue by /harder
    commands: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Read first-wave checkpoints: list targets, ``missed:<pid>``/``deeper+model`` reasons, ``_pop``/``_plan``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("target"), list):
            data["target"] = TargetRef.from_legacy(data["target"])
        reason = data.get("reason")
        if isinstance(reason, str):
            if reason.endswith("+model"):
                reason, data["worded_by"] = reason.removesuffix("+model"), "model"
            reason = reason.split(":", 1)[0] or "plan"
            data["reason"] = reason if reason in Reason._value2member_map_ else "plan"
        if "_plan" in data:
            data["plan_pos"] = tuple(data.pop("_plan"))
        if data.pop("_pop", False):
            data["from_queue"] = True
        return data

    @classmethod
    def load(cls, data: dict | Move | None) -> Move | None:
        if data is None or isinstance(data, Move):
            return data
        return cls.model_validate(data)

    def dump(self) -> dict:
        return self.model_dump(mode="json", exclude={"grounding"} if self.grounding is None else set())

    @property
    def key(self) -> tuple:
        """Two moves are the same when they target the same rubric item with the same authored text."""
        return (self.kind, self.target.id if self.target else None, self.text)

    @property
    def probes_point(self) -> str | None:
        return self.target.point_id if self.reason == Reason.MISSED and self.target else None

    @property
    def counts_as_follow_up(self) -> bool:
        """Spends the main question's follow-up budget."""
        return self.reason in (Reason.MISSED, Reason.DEEPER, Reason.SCAFFOLD)

    @property
    def rewordable(self) -> bool:
        """A model may reword it (probes and deeper follow-ups; not bank questions asked as they are)."""
        return self.kind == "follow_up" and self.reason in (Reason.MISSED, Reason.DEEPER)


END = Move(kind="end")


class OpenQuestion(Move):
    """The question on the table: a move that has been asked, with what happened since."""

    stage: str = ""
    asked_at: float = 0.0
    hints: list[dict] = Field(default_factory=list)
    reverse_log: list[dict] = Field(default_factory=list)

    @classmethod
    def load(cls, data: dict | None) -> OpenQuestion | None:  # type: ignore[override]
        return None if not data else cls.model_validate(data)


class MainThread(BaseModel):
    """The open main question and what its follow-ups have established so far."""

    question_id: str | None = None
    follow_ups: int = 0
    covered: list[str] = Field(default_factory=list)
    probed: list[str] = Field(default_factory=list)
    last_grade: dict | None = None

    @classmethod
    def load(cls, data: dict | None) -> MainThread:
        return cls.model_validate(data or {})


class State(TypedDict, total=False):
    """The checkpointed channels (plain JSON; see the models above for the shape of each entry)."""

    session_id: str
    plan_id: str
    plan_title: str  # as the candidate saw it (reports show it, never the id)
    lang: str
    model: str
    stage_i: int
    q_i: int
    main: dict  # MainThread
    current: dict | None  # OpenQuestion
    queue: list  # [Move]: deferred moves to ask before the plan continues
    next: dict | None  # Move chosen by the policy (or a command), asked by the ``ask`` node
    turns: list  # graded turns (see report.transcript.Turn)
    asked: list  # question texts asked so far
    messages: list  # the chat as the candidate sees it
    inbox: dict  # the message being processed
    inputs: int
    route: str
    stage_seconds: dict
    ksana_level: int  # first-wave checkpoints only
    ladder_levels: dict  # ladder id → the level last asked on it
    finished: bool
    summary: dict


def message(content: str, role: str = "assistant", **meta: Any) -> dict:
    """One chat message as stored in the checkpoint."""
    return {"role": role, "content": content, **meta}
