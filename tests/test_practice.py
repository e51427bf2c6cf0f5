"""Practice that remembers: the ledger, FSRS scheduling, the review plan and progress, with a fake clock."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interviewer.engine.session import Interviewer
from interviewer.knowledge.bank import default_bank
from interviewer.practice.ledger import Ledger, LedgerError
from interviewer.practice.review import progress, review_plan, review_questions

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def turn(qid: str, band: str, covered: float, hints: int = 0, topic: str | None = None, self_rating: str | None = None) -> dict:
    q = default_bank()[qid]
    score = {"流畅": 95, "基本": 70, "卡顿": 40, "不会": 5}[band]
    return {"stage": "technical", "kind": "main", "question_id": qid, "target_id": qid, "topic": topic or q.topic,
            "question": q.question.zh, "answer": "……", "seconds": 60, "hints_used": hints, "self_rating": self_rating,
            "grade": {"band": band, "score": score, "flags": [],
                      "points": [{"point_id": p.id, "point": p.point, "note": p.note, "covered": covered} for p in q.rubric]}}


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger.sqlite", clock=lambda: T0)


def due(ledger: Ledger, item: str) -> datetime:
    return next(datetime.fromisoformat(c["due"]) for c in ledger.cards() if c["item"] == item)


def test_a_fortnight_brings_what_was_missed_back_first(ledger):
    ledger.add_turns("s1", [turn("kv_cache", "不会", 0.0), turn("paged_attention", "流畅", 1.0)], at=T0)
    assert due(ledger, "kv_cache") < due(ledger, "paged_attention")
    assert due(ledger, "kv_cache") <= T0 + timedelta(days=1)
    assert due(ledger, "paged_attention") >= T0 + timedelta(days=3)
    for day in range(1, 15):  # every day the candidate reviews what is due, answering it 基本
        now = T0 + timedelta(days=day)
        todo = [q for q, _ in review_questions(ledger, default_bank(), 40, now)]
        ledger.add_turns(f"d{day}", [turn(q, "基本", 0.8) for q in todo], at=now)
    assert due(ledger, "kv_cache") > T0 + timedelta(days=14), "reviewed items move further out"


def test_hints_count_against_recall(ledger):
    ledger.add_turns("a", [turn("kv_cache", "流畅", 1.0, hints=0)], at=T0)
    ledger.add_turns("b", [turn("paged_attention", "流畅", 1.0, hints=2)], at=T0)
    assert due(ledger, "paged_attention") < due(ledger, "kv_cache")


def test_a_point_missed_three_times_tops_the_review_plan(ledger):
    for day in range(3):
        at = T0 + timedelta(days=day)
        ledger.add_turns(f"s{day}", [turn("flash_attention", "卡顿", 0.0), turn("kv_cache", "卡顿", 0.5)], at=at)
    plan, why = review_plan(ledger, default_bank(), 20, T0 + timedelta(days=4))
    assert plan.stages[0].questions[0] == "flash_attention" and "漏答" in why[0][1]


def test_the_same_history_gives_the_same_plan(tmp_path):
    plans = []
    for n in range(2):
        led = Ledger(tmp_path / f"l{n}.sqlite", clock=lambda: T0)
        led.add_turns("s", [turn("kv_cache", "不会", 0), turn("tp_vs_pp", "卡顿", 0.5), turn("memory_bound", "基本", 0.8)], at=T0)
        plans.append(review_plan(led, default_bank(), 20, T0 + timedelta(days=2))[0].model_dump())
    assert plans[0] == plans[1]


def test_recording_is_idempotent_so_a_crash_between_checkpoint_and_ledger_loses_nothing(ledger):
    turns = [turn("kv_cache", "不会", 0.0), turn("paged_attention", "基本", 0.8)]
    assert ledger.add_turns("s", turns[:1]) == 1  # the process died before the second turn reached the ledger
    assert ledger.add_turns("s", turns) == 1  # the next message hands over the whole list again
    assert ledger.add_turns("s", turns) == 0
    items = [c["item"] for c in ledger.cards("question")]
    assert sorted(items) == ["kv_cache", "paged_attention"] and len(ledger.rows("SELECT * FROM turns")) == 2


def test_a_clock_that_goes_backwards_never_makes_an_item_due_earlier(ledger):
    ledger.add_turns("s", [turn("kv_cache", "流畅", 1.0)], at=T0 + timedelta(days=5))
    later = due(ledger, "kv_cache")
    ledger.add_turns("t", [turn("kv_cache", "流畅", 1.0)], at=T0)  # the clock jumped back five days
    assert due(ledger, "kv_cache") >= later


def test_a_self_rating_given_later_is_recorded_and_shown_beside_the_grade(ledger):
    t = turn("kv_cache", "卡顿", 0.5)
    ledger.add_turns("s", [t], at=T0)
    ledger.add_turns("s", [{**t, "self_rating": "流畅"}], at=T0)
    shown = progress(ledger, default_bank(), T0)["self_vs_grader"]
    assert shown == [{"day": "2026-12-01", "agree": 0.0, "n": 1}]


def test_progress(ledger):
    ledger.add_turns("s1", [turn("kv_cache", "不会", 0.0)], at=T0 - timedelta(days=1))
    ledger.add_turns("s2", [turn("kv_cache", "基本", 0.8), turn("paged_attention", "流畅", 1.0)], at=T0)
    p = progress(ledger, default_bank(), T0)
    assert p["sessions"] == 2 and p["answers"] == 3 and p["streak_days"] == 2 and p["minutes"] == 3.0
    assert {m["topic"] for m in p["mastery"]} == {"kv_cache", "paged_attention"}
    assert p["most_missed"][0]["note"] and "kv_cache" in p["due_this_week"]


def test_bad_ledgers_are_refused_and_left_unchanged(tmp_path):
    newer = tmp_path / "newer.sqlite"
    Ledger(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    before = newer.read_bytes()
    with pytest.raises(LedgerError, match="newer version"):
        Ledger(newer)
    assert newer.read_bytes() == before
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError, match="not a ledger"):
        Ledger(junk)


def test_a_malformed_or_foreign_transcript_changes_nothing(ledger, tmp_path):
    from interviewer.report.transcript import TranscriptError

    for bad in ('{"version": 1, "session_id": "x"}', "[1, 2, 3]", "\x00\x01binary"):
        f = tmp_path / "t.json"
        f.write_text(bad, encoding="utf-8")
        with pytest.raises(TranscriptError):
            ledger.add_transcript(f)
    assert ledger.rows("SELECT * FROM turns") == [] and ledger.cards() == []


def test_interviews_are_recorded_and_the_review_plan_resumes_after_a_restart(settings):
    led = Ledger(settings.ledger_path)
    iv = Interviewer(settings, None, ledger=led)
    sid = iv.start().session_id
    iv.send(sid, "我是研究生，做推理优化。")
    iv.send(sid, "/skip")
    assert len(led.rows("SELECT * FROM turns")) == 2
    review = iv.start("review", minutes=10)
    assert review.state["plan_id"].startswith("review_") and review.state["current"]
    again = Interviewer(settings, None, ledger=led)  # a restart: the review plan is read back from the data dir
    assert again.send(review.session_id, "/skip").state["turns"]


def test_the_ledger_never_holds_the_api_key(settings):
    secret = "sk-never-in-the-ledger-123"
    keyed = settings.with_(api_key=secret)
    led = Ledger(keyed.ledger_path)
    iv = Interviewer(keyed, None, ledger=led)  # the model is offline: the key is only in the settings
    sid = iv.start().session_id
    iv.send(sid, f"我的 key 是 {secret[:3]}… 不，我是研究生。")
    led.close()
    for f in keyed.data_dir.glob("ledger.sqlite*"):
        assert secret.encode() not in f.read_bytes()


def test_cli_progress_import_export_forget(settings, tmp_path):
    from interviewer.engine.session import Interviewer as Iv
    from interviewer.report.exporters import render
    from interviewer.report.transcript import build_transcript

    iv = Iv(settings, None)
    sid = iv.start().session_id
    iv.send(sid, "我是研究生。")
    exported = tmp_path / "t.json"
    exported.write_text(render(build_transcript(iv.state(sid)), "json"), encoding="utf-8")
    data = ["--data-dir", str(settings.data_dir)]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "interviewer", *data, *args], capture_output=True, text=True, timeout=120)

    assert "added 1" in cli("ledger", "import", str(exported)).stdout
    assert json.loads(cli("progress", "--json").stdout)["answers"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    out = cli("ledger", "import", str(bad))
    assert out.returncode == 2 and "nothing was changed" in out.stderr
    dump = json.loads(cli("ledger", "export").stdout)
    assert len(dump["turns"]) == 1 and dump["cards"]
    assert cli("ledger", "forget").returncode == 2
    assert "forgot 1" in cli("ledger", "forget", "--yes").stdout
    assert json.loads(cli("progress", "--json").stdout)["answers"] == 0
    assert Path(settings.ledger_path).is_file()


def test_the_drill_asks_the_numbers_got_wrong_first(ledger):
    from interviewer.knowledge.bank import load_plan
    from interviewer.practice.review import personalize

    drill = load_plan("drill")
    third = drill.stages[0].questions[2]
    ledger.add_turns("s", [turn(third, "不会", 0.0)], at=T0)
    plan, why = personalize(drill, ledger, default_bank(), fresh=False)
    assert plan.stages[0].questions[0] == third and sorted(plan.stages[0].questions) == sorted(drill.stages[0].questions)
    assert why and "漏答" in why[0][1]


def test_a_fresh_mock_keeps_the_script_order_with_unseen_questions_of_the_same_topics(ledger):
    from interviewer.knowledge.bank import load_plan
    from interviewer.practice.review import personalize

    seed, bank = load_plan("seed_mock"), default_bank()
    ledger.add_turns("s", [turn("kv_cache", "卡顿", 0.5)], at=T0)
    plan, why = personalize(seed, ledger, bank, fresh=True)
    assert [s.id for s in plan.stages] == [s.id for s in seed.stages]
    old, new = seed.stages[1].questions, plan.stages[1].questions
    assert new[0] != "kv_cache" and bank[new[0]].topic == "kv_cache" and len(set(new)) == len(new)
    assert [bank[q].topic for q in new] == [bank[q].topic for q in old]
    assert any(q == new[0] for q, _ in why)


def test_a_fresh_mock_starts_and_resumes(settings):
    led = Ledger(settings.ledger_path)
    led.add_turns("old", [turn("kv_cache", "卡顿", 0.5)])
    iv = Interviewer(settings, None, ledger=led)
    reply = iv.start("seed_mock_fresh")
    assert reply.state["plan_id"] == "seed_mock_fresh"
    again = Interviewer(settings, None, ledger=led)
    assert again.send(reply.session_id, "我是研究生，做推理优化。").state["turns"]


def test_sessions_and_ledger_share_one_store_interface(settings, tmp_path):
    """Both stores take a ``Database``: one database can back both (as a server database would for a group)."""
    from interviewer.database import DatabaseError, open_database
    from interviewer.engine.store import SessionStore

    db = open_database(f"sqlite:///{tmp_path / 'one.sqlite'}")
    store, led = SessionStore(db), Ledger(db)
    iv = Interviewer(settings, None, store=store, ledger=led)
    sid = iv.start().session_id
    iv.send(sid, "我是研究生，做推理优化。")
    tables = {r["name"] for r in db.rows("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "checkpoints", "turns", "points", "cards"} <= tables
    assert store.get(sid) and led.rows("SELECT session_id FROM turns") == [{"session_id": sid}]
    assert db.integrity_ok()
    with pytest.raises(DatabaseError, match="not supported yet"):
        open_database("postgresql://team-db/interviews")


def test_the_progress_charts_show_points_for_one_day_and_lines_from_two():
    import pandas as pd

    from interviewer.ui.handlers import _line_or_points

    one = pd.DataFrame({"日期": ["2026-12-01", "2026-12-01"], "得分": [40, 80], "话题": ["KV Cache", "FlashAttention"]})
    two = pd.DataFrame({"日期": ["2026-12-01", "2026-12-02"], "得分": [40, 80], "话题": ["KV Cache", "KV Cache"]})
    assert [u["visible"] for u in _line_or_points(one, "得分", "暂无")] == [False, True]
    assert [u["visible"] for u in _line_or_points(two, "得分", "暂无")] == [True, False]
    assert {u["title"] for u in _line_or_points(one.iloc[0:0], "一致率", "暂无自评")} == {"一致率（暂无自评）"}


def test_a_numbers_drill_done_before_comes_back_with_a_fresh_model_configuration(ledger):
    """Variants (knowledge/variants.py) draw fresh configurations: a computation already answered is asked again on
    another model, its expected value computed from the variant's inputs, and why it is there is said."""
    from interviewer.grading.contract import Target
    from interviewer.grading.offline import grade_offline
    from interviewer.knowledge.bank import load_plan
    from interviewer.practice.review import personalize

    bank = default_bank()
    numbers = load_plan("numbers")
    first = numbers.stages[0].questions[0]
    variants = [q for q in bank.values() if q.variant_of == first]
    assert len(variants) >= 3 and len({v.numeric.expected for v in variants} | {bank[first].numeric.expected}) == len(variants) + 1
    ledger.add_turns("s1", [turn(first, "流畅", 1.0)], at=T0)
    plan, why = personalize(numbers, ledger, bank, fresh=False)
    asked = plan.stages[0].questions[0]
    assert asked == variants[0].id and any(q == asked and "换一组模型参数" in r for q, r in why)
    v = bank[asked]
    assert "Llama-3-8B" in v.question.zh and "8192" in v.question.zh and "1 GiB" in v.reference_answer.zh
    right = "每 token 的 KV 是 2（K 和 V）× 32 层 × 8 个 KV 头 × head_dim 128 × 2 字节 = 128 KiB，乘 8192 个 token 大约 1 GiB。"
    assert grade_offline(Target.of_question(v), right).band == "流畅"
    slipped = grade_offline(Target.of_question(v), right.replace("8 个 KV 头", "32 个头").replace("128 KiB", "512 KiB").replace("1 GiB", "4 GiB"))
    assert slipped.band != "流畅", "the authored question's answer (Q heads, not KV heads) does not pass for the variant"
    ledger.add_turns("s2", [turn(asked, "基本", 0.5)], at=T0)
    again, _ = personalize(numbers, ledger, bank, fresh=False)
    assert again.stages[0].questions[0] == variants[1].id, "each drill draws a configuration not done yet"
