"""Topics and ladders are data: every bank topic has a label, every ladder step is in the bank, and a new ladder
is one YAML file."""

from __future__ import annotations

import pytest

from interviewer.engine.moves import ladder_move
from interviewer.knowledge.bank import KnowledgeError, default_bank
from interviewer.knowledge.topics import default_ladders, default_topics, ladder_for, load_ladders, topic_label


def test_every_bank_topic_has_a_label():
    topics = default_topics()
    assert {q.topic for q in default_bank().values()} <= set(topics)
    assert topic_label("parallelism") == "并行（TP/PP）" and topic_label("kv_cache", "en") == "KV cache"
    assert topic_label("not_a_topic") == "not_a_topic"


def test_every_ladder_step_is_in_the_bank():
    bank = default_bank()
    for ladder in default_ladders().values():
        ladder.check_against(bank)
    assert {lad.command for lad in default_ladders().values()} == {"ksana"}


def test_the_ksana_ladder_climbs_one_level_per_step():
    bank, ladder = default_bank(), default_ladders()["ksanallm"]
    asked: set[str] = set()
    levels = []
    for level in (2, 3, 4):
        move = ladder_move(bank, ladder, level, asked, "zh")
        assert move is not None and move.difficulty >= level and move.topic == "ksanallm"
        asked.add(move.text)
        levels.append(move.difficulty)
    assert levels == sorted(levels)


def test_a_new_ladder_is_one_file(tmp_path):
    (tmp_path / "fa.yaml").write_text(
        "id: flash\ncommand: fa\nlabel: {zh: FlashAttention 深挖}\ntopics: [flash_attention]\n"
        "steps: [flash_attention, flash_attention/f1]\n", encoding="utf-8")
    ladders = load_ladders(tmp_path)
    ladders["flash"].check_against(default_bank())
    assert ladder_for("fa", "flash_attention", ladders)[0].id == "flash"
    move = ladder_move(default_bank(), ladders["flash"], 1, set(), "zh")
    assert move is not None and move.target.question_id == "flash_attention"


def test_a_broken_ladder_is_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("id: bad\ncommand: bad\nlabel: {zh: x}\nsteps: [no_such_question]\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="no_such_question"):
        load_ladders(tmp_path)["bad"].check_against(default_bank())


SEED_TOPICS = ("kv_cache", "paged_attention", "continuous_batching", "flash_attention", "parallelism", "memory_bound",
               "speculative_decoding")


def test_each_seed_topic_has_its_own_ksana_ladder_and_a_general_one_after_it():
    for topic in SEED_TOPICS:
        own, general = ladder_for("ksana", topic)
        assert own is not None and topic in own.topics, topic
        assert general is not None and "all" in general.topics
    assert ladder_for("ksana", "intro") == (default_ladders()["ksanallm"], None)
