"""The routing policy as a pure function: state + plan + bank + last grade in, the next move out.

No index, no store, no graph, no model: each test runs in milliseconds.
"""

from __future__ import annotations

import pytest

from interviewer.engine.policy import LastTurn, Situation, choose, next_main
from interviewer.engine.state import MainThread, Move, Reason, TargetRef
from interviewer.grading.contract import Grade, PointResult
from interviewer.knowledge.bank import default_bank, load_plan


@pytest.fixture(scope="module")
def bank():
    return default_bank()


@pytest.fixture(scope="module")
def plan(bank):
    p = load_plan("seed_mock")
    p.check_against(bank)
    return p


def grade(qid: str, score: int, flags: tuple[str, ...] = (), covered: tuple[str, ...] = ()) -> Grade:
    q = default_bank()[qid]
    points = [PointResult(point_id=p.id, point=p.point, covered=1.0 if p.id in covered else 0.0, weight=p.weight) for p in q.rubric]
    band = "流畅" if score >= 85 else "基本" if score >= 60 else "卡顿" if score >= 30 else "不会"
    return Grade(question_id=qid, score=score, band=band, points=points, flags=list(flags))


def technical(plan, bank, **kw) -> Situation:
    """In the technical stage, the KV cache main question just answered."""
    si = next(i for i, s in enumerate(plan.stages) if s.id == "technical")
    qid = plan.stages[si].questions[0]
    defaults = dict(plan=plan, bank=bank, stage_i=si, q_i=1, main=MainThread(question_id=qid))
    return Situation(**(defaults | kw))


def test_the_first_move_is_the_plans_first_question(plan, bank):
    move = choose(Situation(plan=plan, bank=bank))
    assert move.kind == "main" and move.reason == Reason.PLAN and move.plan_pos == (0, 0)
    assert move.question_id == plan.stages[0].questions[0]


def test_a_weak_answer_is_probed_on_its_heaviest_missed_point(plan, bank):
    s = technical(plan, bank)
    qid = s.main.question_id
    s = technical(plan, bank, last=LastTurn("main", "只知道一点", grade(qid, 40)))
    move = choose(s)
    heaviest = max(bank[qid].rubric, key=lambda p: p.weight)
    assert move.reason == Reason.MISSED and move.target == TargetRef(kind="probe", question_id=qid, point_id=heaviest.id)
    assert move.grounding is not None and move.grounding.note == heaviest.note  # citations are found later, by the ask node


def test_covered_and_probed_points_are_never_probed_again(plan, bank):
    qid = technical(plan, bank).main.question_id
    by_weight = sorted(bank[qid].rubric, key=lambda p: -p.weight)
    main = MainThread(question_id=qid, covered=[by_weight[0].id], probed=[by_weight[1].id] if len(by_weight) > 1 else [])
    move = choose(technical(plan, bank, main=main, last=LastTurn("main", "x", grade(qid, 40))))
    assert move.target.point_id not in {by_weight[0].id, *main.probed}


def test_a_strong_main_answer_goes_deeper(plan, bank):
    qid = technical(plan, bank).main.question_id
    move = choose(technical(plan, bank, last=LastTurn("main", "完整的回答", grade(qid, 95))))
    assert move.reason == Reason.DEEPER and move.target.kind == "follow_up"
    assert move.difficulty > bank[qid].difficulty


def test_giving_up_moves_on(plan, bank):
    qid = technical(plan, bank).main.question_id
    for flags, score in ((("skipped",), 0), (("dont_know",), 10)):
        move = choose(technical(plan, bank, last=LastTurn("main", "不知道", grade(qid, score, flags))))
        assert move.kind == "main" and move.reason == Reason.PLAN


def test_the_follow_up_budget_and_the_stage_clock_end_the_thread(plan, bank):
    qid = technical(plan, bank).main.question_id
    last = LastTurn("follow_up", "x", grade(qid, 40))
    spent = MainThread(question_id=qid, follow_ups=plan.follow_up_budget)
    assert choose(technical(plan, bank, main=spent, last=last)).reason == Reason.PLAN
    stage = next(s for s in plan.stages if s.id == "technical")
    late = technical(plan, bank, last=last, stage_seconds={"technical": stage.budget_s + 1})
    assert choose(late).reason == Reason.PLAN


def test_a_deferred_question_comes_first(plan, bank):
    deferred = Move(kind="main", question_id="kv_cache", text="KV?", reason=Reason.PLAN, deferred=True,
                    target=TargetRef(kind="question", question_id="kv_cache"))
    move = choose(technical(plan, bank, queue=(deferred,), last=LastTurn("main", "x", grade("kv_cache", 95))))
    assert move.from_queue and move.deferred and move.question_id == "kv_cache"


def test_after_the_last_question_the_interview_ends(plan, bank):
    end = Situation(plan=plan, bank=bank, stage_i=len(plan.stages) - 1, q_i=len(plan.stages[-1].questions))
    assert next_main(end).kind == "end"


def test_legacy_checkpoints_read_as_typed_moves():
    """Checkpoints of the first wave stored targets as lists and routing in string prefixes."""
    old = {"kind": "follow_up", "question_id": None, "text": "?", "topic": "kv_cache", "difficulty": 1,
           "target": ["probe", "kv_cache", "reuse"], "citations": [], "reason": "missed:reuse", "_pop": True}
    move = Move.load(old)
    assert move.reason == Reason.MISSED and move.probes_point == "reuse" and move.from_queue
    assert Move.load({"kind": "follow_up", "target": ["follow_up", "kv_cache", 0], "reason": "deeper+model"}).worded_by == "model"
    assert Move.load({"kind": "main", "target": ["question", "kv_cache"], "reason": "plan", "_plan": [1, 0]}).plan_pos == (1, 0)


def test_target_ids_round_trip(bank):
    for ref in (TargetRef(kind="question", question_id="kv_cache"), TargetRef(kind="follow_up", question_id="kv_cache", follow_up=0),
                TargetRef(kind="probe", question_id="kv_cache", point_id=bank["kv_cache"].rubric[0].id)):
        assert TargetRef.parse(ref.id) == ref
    assert TargetRef(kind="follow_up", question_id="kv_cache", follow_up=0).id == "kv_cache/f1"


def test_a_follow_up_the_answer_already_covered_is_never_asked(plan, bank):
    qid = technical(plan, bank).main.question_id
    strong = LastTurn("main", "完整的回答", grade(qid, 95))
    first = choose(technical(plan, bank, last=strong))
    again = choose(technical(plan, bank, last=strong, answered=frozenset({first.target.id})))
    assert again.target != first.target, "the follow-up the answer covered is skipped"


def test_a_strong_follow_up_answer_goes_one_level_deeper_on_the_same_thread(plan, bank):
    qid = technical(plan, bank).main.question_id
    q = bank[qid]
    assert len(q.follow_ups) >= 1
    first = choose(technical(plan, bank, last=LastTurn("main", "x", grade(qid, 95))))
    after = choose(technical(plan, bank, main=MainThread(question_id=qid, follow_ups=1), asked=frozenset({first.text}),
                             last=LastTurn("follow_up", "y", grade(qid, 95))))
    assert after.reason in (Reason.DEEPER, Reason.PLAN)
    if after.reason == Reason.DEEPER:
        assert after.target.question_id == qid and after.text != first.text


def test_a_thread_over_its_time_moves_on(plan, bank):
    """Topic time follows the plan: a main question and its follow-ups past twice its budget get no more follow-ups."""
    from interviewer.engine.policy import THREAD_SHARE

    qid = technical(plan, bank).main.question_id
    weak = LastTurn("main", "x", grade(qid, 40))
    assert choose(technical(plan, bank, last=weak, thread_seconds=10)).reason == Reason.MISSED
    late = technical(plan, bank, last=weak, thread_seconds=THREAD_SHARE * bank[qid].time_budget_s + 1)
    assert choose(late).reason == Reason.PLAN


def _hard_main(bank) -> str:
    """A difficulty-2 question of a topic that also has an easier question."""
    return next(q.id for q in sorted(bank.values(), key=lambda q: q.id) if q.stage == "technical" and q.difficulty == 2
                and any(o.topic == q.topic and o.difficulty == 1 and o.stage == "technical" for o in bank.values()))


def test_an_answer_that_did_not_start_scaffolds_down_one_level_on_the_same_topic(plan, bank):
    qid = _hard_main(bank)
    for flags, score in ((("dont_know",), 10), ((), 5)):
        s = technical(plan, bank, main=MainThread(question_id=qid), last=LastTurn("main", "这个我不太清楚", grade(qid, score, flags)))
        move = choose(s)
        assert move.reason == Reason.SCAFFOLD and move.kind == "follow_up", (flags, move)
        easier = bank[move.target.question_id]
        assert easier.topic == bank[qid].topic and easier.difficulty == bank[qid].difficulty - 1
        asked = technical(plan, bank, main=MainThread(question_id=qid), asked=frozenset({easier.question.zh}), last=s.last)
        assert choose(asked).target != move.target, "an easier question already asked is not asked again"
    skipped = technical(plan, bank, main=MainThread(question_id=qid), last=LastTurn("main", "", grade(qid, 0, ("skipped",))))
    assert choose(skipped).reason == Reason.PLAN, "a /skip is respected"


def test_after_a_scaffold_the_thread_climbs_back_or_moves_on(plan, bank):
    qid = _hard_main(bank)
    main = MainThread(question_id=qid, follow_ups=1)
    held = choose(technical(plan, bank, main=main, last=LastTurn("follow_up", "……", grade(qid, 70), Reason.SCAFFOLD)))
    heaviest = max(bank[qid].rubric, key=lambda p: p.weight)
    assert held.reason == Reason.MISSED and held.target.point_id == heaviest.id, "back up to the original question"
    fell = choose(technical(plan, bank, main=main, last=LastTurn("follow_up", "……", grade(qid, 20), Reason.SCAFFOLD)))
    assert fell.reason == Reason.PLAN
