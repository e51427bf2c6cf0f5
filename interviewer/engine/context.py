"""What the graph nodes run with: settings, bank, plans, retriever, model, the model-call pool and each turn's
deadline. One :class:`Context` serves every session of an :class:`~interviewer.engine.session.Interviewer`."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from interviewer.config import Settings
from interviewer.engine.policy import LastTurn, Situation
from interviewer.engine.prefetch import Listener, PrefetchStats, Prepared
from interviewer.engine.state import MainThread, Move, State
from interviewer.grading.contract import Grade, Target, TargetRef, reference_of
from interviewer.knowledge.bank import Plan, Question, load_plan
from interviewer.search.retrieval import Retriever

MODEL_SHARE = 0.85  # model calls of one turn must end by this share of turn_deadline_s; the rest is for local work


def result_within(future: Future, seconds: float) -> Any:
    """``future``'s result within ``seconds`` (at least 0.1). On time-out it is cancelled, so a call still queued
    behind slow ones never runs, and ``FutureTimeout`` is raised."""
    try:
        return future.result(timeout=max(0.1, seconds))
    except FutureTimeout:
        future.cancel()
        raise


@dataclass
class Context:
    settings: Settings
    bank: dict[str, Question]
    retriever: Retriever | None
    model: Any = None
    clock: Callable[[], float] = time.time
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="model"))
    plans: dict[str, Plan] = field(default_factory=dict)
    turn_ends: dict[str, float] = field(default_factory=dict)  # session → monotonic time by which its model calls must end
    listeners: dict[str, Listener] = field(default_factory=dict)  # session → who sees a question while the model writes it
    prepared: dict[str, Prepared] = field(default_factory=dict)  # session → the follow-up worded while its answer is graded
    prefetch: PrefetchStats = field(default_factory=PrefetchStats)
    _addresses: set[str] | None = None

    def plan(self, plan_id: str) -> Plan:
        """A plan of knowledge/plans, or one made for this user (a review plan, kept in data_dir/plans)."""
        if plan_id not in self.plans:
            made = self.settings.data_dir / "plans" / f"{plan_id}.json"
            plan = Plan.model_validate_json(made.read_text(encoding="utf-8")) if made.is_file() else load_plan(plan_id)
            plan.check_against(self.bank)
            self.plans[plan_id] = plan
        return self.plans[plan_id]

    def save_plan(self, plan: Plan) -> None:
        """Keep a plan made for this user, so its sessions resume after a restart."""
        folder = self.settings.data_dir / "plans"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{plan.id}.json").write_text(plan.model_dump_json(), encoding="utf-8")
        self.plans[plan.id] = plan

    def addresses(self) -> set[str]:
        """Every note address in the index (cached until :meth:`forget_addresses`)."""
        if self._addresses is None:
            self._addresses = self.retriever.addresses() if self.retriever else set()
        return self._addresses

    def forget_addresses(self) -> None:
        self._addresses = None

    def budget(self, sid: str | None, share: float) -> float:
        """Seconds a model call may take: its share of the deadline, capped by what is left of the turn."""
        left = self.turn_ends.get(sid or "", float("inf")) - time.monotonic()
        return max(0.0, min(self.settings.turn_deadline_s * share, left))

    def start_turn(self, sid: str) -> None:
        self.turn_ends[sid] = time.monotonic() + self.settings.turn_deadline_s * MODEL_SHARE

    def end_turn(self, sid: str) -> None:
        self.turn_ends.pop(sid, None)

    def target(self, ref: TargetRef, lang: str) -> Target:
        return Target.of_ref(self.bank, ref, lang)

    def reference(self, ref: TargetRef, lang: str) -> str:
        return reference_of(self.bank, ref, lang)

    def situation(self, state: State) -> Situation:
        """The policy's view of ``state``."""
        turns = state.get("turns") or []
        last = turns[-1] if turns else None
        main = MainThread.load(state.get("main"))
        return Situation(
            plan=self.plan(state["plan_id"]), bank=self.bank, lang=state.get("lang", "zh"),
            stage_i=state.get("stage_i", 0), q_i=state.get("q_i", 0), main=main,
            queue=tuple(Move.load(m) for m in state.get("queue") or []),
            last=LastTurn(last["kind"], last["answer"], Grade.model_validate(last["grade"]), last.get("reason", ""))
            if last else None,
            stage_seconds=dict(state.get("stage_seconds") or {}), asked=frozenset(state.get("asked") or []),
            thread_seconds=sum(float(t.get("seconds") or 0) for t in turns if main.question_id and t.get("thread") == main.question_id))
