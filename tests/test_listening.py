"""The interviewer follows the conversation: /harder ksana continues from the topic under discussion, hints are
about the open question, and the reverse stage answers offline without leaking the script."""

from __future__ import annotations

import pytest

from interviewer.engine.session import Interviewer
from interviewer.knowledge.bank import Plan, default_bank, load_plan
from interviewer.knowledge.topics import ladder_for

SEED_TECHNICAL = ("kv_cache", "paged_attention", "continuous_batching", "flash_attention", "ksana_highlights", "tp_vs_pp", "memory_bound")


def one_stage_plan(stage: str, questions: list[str], candidate_asks: int = 0) -> Plan:
    seed = load_plan("seed_mock")
    base = next(s for s in seed.stages if s.id == stage)
    return Plan(id=f"test_{stage}", title=seed.title, answer_budget_s=120, follow_up_budget=2,
                stages=[base.model_copy(update={"questions": questions, "candidate_asks": candidate_asks})])


def interviewer_with(settings, plan: Plan, retriever=None) -> tuple[Interviewer, str]:
    iv = Interviewer(settings, retriever)
    iv.ctx.plans[plan.id] = plan
    return iv, iv.start(plan.id).session_id


def said(reply) -> str:
    return "\n".join(m["content"] for m in reply.messages if m["role"] == "assistant")


@pytest.mark.parametrize("qid", [*SEED_TECHNICAL, "moe_ep_attn_dp"])  # the seven seed topics and MoE/EP (ksana_moe)
def test_harder_ksana_continues_from_the_open_topic(settings, qid):
    bank = default_bank()
    iv, sid = interviewer_with(settings, one_stage_plan("technical", [qid]))
    own, general = ladder_for("ksana", bank[qid].topic)
    steps = {s.split("/")[0] for s in own.steps}
    levels, first = [], None
    for _ in range(len(own.steps) + 3):
        reply = iv.send(sid, "/harder ksana")
        current = reply.state.get("current")
        if not current:
            break
        first = first or current
        assert current["topic"] == "ksanallm" and "/harder ksana" in current["commands"]
        levels.append(current["difficulty"])
        if "已经问完" in said(reply) or "都已经问过" in said(reply):
            break
    assert first["target"]["question_id"] in steps, "the first harder question is the open topic's own"
    assert levels == sorted(levels) and len(levels) >= 2
    assert first["difficulty"] > bank[qid].difficulty or first["difficulty"] == 4


def test_an_exhausted_ladder_says_what_comes_instead(settings):
    iv, sid = interviewer_with(settings, one_stage_plan("technical", ["flash_attention"]))
    notices = []
    for _ in range(40):
        reply = iv.send(sid, "/harder ksana")
        notices.append(said(reply))
        if "都已经问过" in notices[-1]:
            break
    text = "\n".join(notices)
    assert "这条阶梯已经问完了，接下来换成" in text and "都已经问过了" in text


def test_plain_harder_says_when_the_topic_has_nothing_harder(settings):
    iv, sid = interviewer_with(settings, one_stage_plan("technical", ["kv_cache"]))
    for _ in range(20):
        reply = iv.send(sid, "/harder")
        if "没有更难的题" in said(reply):
            assert "/harder ksana" in said(reply)
            return
    pytest.fail("the topic ladder never ended")


def test_a_hint_on_a_follow_up_is_about_the_follow_up(settings):
    iv, sid = interviewer_with(settings, one_stage_plan("technical", ["kv_cache"]))
    reply = iv.send(sid, "KV Cache 就是把算过的 K 和 V 存起来。")  # partial: a probe of a missed point follows
    follow_up = reply.state["current"]
    assert follow_up["kind"] == "follow_up"
    first = said(iv.send(sid, "/hint"))
    assert follow_up["text"] in first and default_bank()["kv_cache"].question.zh not in first
    assert "再要下一级提示扣 10 分" in first
    third = [said(iv.send(sid, "/hint")) for _ in range(2)][-1]
    assert "提示已用完" in third and "累计扣 30 分" in third


@pytest.fixture
def reverse_interview(indexed_settings, shared_retriever):
    return interviewer_with(indexed_settings, one_stage_plan("reverse", ["reverse_questions", "why_direction"], candidate_asks=3),
                            shared_retriever)


def test_reverse_stage_answers_process_questions_honestly(reverse_interview):
    iv, sid = reverse_interview
    text = said(iv.send(sid, "面试结果什么时候出？"))
    assert "模拟面试" in text and "Q1" not in text and "技术深挖" not in text
    text = said(iv.send(sid, "KsanaLLM 的 prefix cache 淘汰为什么不是 LRU？"))
    assert "根据笔记" in text and "Day7_" not in text
    reply = iv.send(sid, "没有了，谢谢。")
    assert reply.state["current"]["question_id"] == "why_direction", "没有了 closes the stage"
    turn = reply.state["turns"][-1]
    assert [x["question"] for x in turn["reverse_log"]][:2] == ["面试结果什么时候出？", "KsanaLLM 的 prefix cache 淘汰为什么不是 LRU？"]


def test_a_question_outside_the_notes_gets_an_honest_answer_and_the_closest_section(reverse_interview):
    iv, sid = reverse_interview
    text = said(iv.send(sid, "量子计算对推理有帮助吗？"))
    assert "笔记里没有可靠的依据" in text and "最接近的是" in text


def test_reports_show_labels_not_ids_and_every_reverse_reply(reverse_interview):
    from interviewer.report.exporters import render
    from interviewer.report.transcript import build_transcript

    iv, sid = reverse_interview
    iv.send(sid, "团队现在主要在做什么？")
    iv.send(sid, "没有了")
    iv.send(sid, "/end")
    t = build_transcript(iv.state(sid))
    for fmt in ("md", "html"):
        out = render(t, fmt)
        assert "模拟面试官" in out, f"{fmt}: the interviewer's reverse-stage reply is in the report"
        assert "test_reverse" not in out and "seed_mock" not in out
    assert "overflow-wrap:anywhere" in render(t, "html")
