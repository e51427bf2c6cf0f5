"""The reverse stage: the candidate's own questions, answered from the notes only (the ``reverse`` graph node).

Questions about the process, the team or the job (``knowledge/reverse_faq.yaml``) get an honest authored answer:
a mock interviewer cannot know the real one, and says how to ask it well. Technical questions: with a model, a
LangChain agent (``create_agent``) with one tool, notes search, which must cite the notes or say it does not know;
offline, the best matching note section quoted with its citation (whole sentences, no notes to self), or an
honest "not in my notes" naming the closest section. The candidate's own interview script (Day 7) is never
quoted back. "没有了" / "no more" closes the stage.
"""

from __future__ import annotations

import re
from concurrent.futures import Executor

from langchain_core.messages import AIMessageChunk, ToolMessage

from interviewer.engine.context import Context
from interviewer.engine.prefetch import TextStream
from interviewer.engine.state import OpenQuestion, State, message
from interviewer.knowledge.topics import default_reverse_faq
from interviewer.messages import language_name, say
from interviewer.models import bounded
from interviewer.search.retrieval import Passage, Retriever, content_words

POLITE = re.compile(r"[\W_]+|谢谢您?|感谢|多谢|thanks?( you)?|好的|嗯+|哈+|啦|吧|呀|了|的", re.IGNORECASE)
NO_MORE_WORDS = {"没有", "没", "没有问题", "暂时没有", "暂时没", "就这些", "我没有", "我没", "我没有问题", "没什么", "没什么问题",
                 "暂时没有问题", "没有其他问题", "没有别的问题",
                 "nomore", "nomorequestions", "nothingelse", "no", "none", "thatsall", "thatsit", "imdone", "noquestions"}
MIN_SHARED_WORDS = 0.4  # share of the question's technical words that the passage must contain
GENERIC = {"为什么", "怎么", "怎么样", "什么", "有没有", "是不是", "如何", "哪些", "团队", "你们", "我们", "这个", "那个", "一下",
           "请问", "问题", "想问", "可以", "现在", "主要", "一般", "具体", "实际", "会不会", "能不能", "大概",
           # words so common in these notes that sharing them says nothing about relevance
           "推理", "计算", "帮助", "模型", "性能", "时间", "时候", "没有", "不是", "两个", "决定", "影响", "作用", "效果",
           "区别", "优化", "使用", "实现", "方面", "有用", "好处", "需要", "面试", "结果", "流程", "出来", "通知"}
NOTE_TO_SELF = re.compile(r"TODO|FIXME|待核实|待确认|自己(记|看|备注)|备忘|note to self|给自己|（我?注[:：]|^\s*>")
OWN_SCRIPT = "Day7_"  # the candidate's own interview script: never quoted back as an answer
EXCERPT_CHARS = 300


def closes_stage(text: str) -> bool:
    """"没有了，谢谢。", "暂时没有问题了", "No more, thanks!" close the reverse stage."""
    return POLITE.sub("", text.lower()) in NO_MORE_WORDS


def _technical_words(text: str) -> set[str]:
    return content_words(text) - GENERIC


def _relevant(question: str, passage: Passage) -> bool:
    """The passage names enough of the question's technical words (jieba words, code symbols)."""
    q = _technical_words(question)
    return bool(q) and len(q & content_words(passage.heading + " " + passage.text)) / len(q) >= MIN_SHARED_WORDS


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Whole sentences of a note section, up to ``limit`` characters, without notes to self."""
    lines = [ln.strip(" -*#\t") for ln in text.splitlines() if ln.strip() and not NOTE_TO_SELF.search(ln)]
    flat = " ".join(ln for ln in lines if ln)
    if len(flat) <= limit:
        return flat
    cut = max(flat.rfind(mark, 0, limit) for mark in "。！？；.!?;")
    return flat[:cut + 1] if cut > limit // 3 else flat[:limit].rstrip() + "…"


def faq_answer(question: str, lang: str) -> str | None:
    """The authored answer to a question about the process, the team or the job, if it is one."""
    for entry in default_reverse_faq():
        if any(re.search(p, question, re.IGNORECASE) for p in entry.patterns):
            return entry.answer.get(lang)
    return None


def answer_offline(question: str, retriever: Retriever | None, lang: str) -> tuple[str, list[dict]]:
    """A technical question with a relevant note section is answered from it; a question about the process,
    the team or the job from the authored answers; anything else honestly, naming the closest section."""
    faq = faq_answer(question, lang)
    if faq is not None and len(_technical_words(question)) < 3:  # "结果什么时候出？", "团队在做什么？"
        return faq, []
    passages = [p for p in (retriever.search(question, k=6) if retriever else []) if not p.source.startswith(OWN_SCRIPT)]
    good = [p for p in passages if _relevant(question, p)] if len(_technical_words(question)) >= 2 else []
    if faq is not None and not good:
        return faq, []
    if not good:
        closest = passages[0].address if passages else ""
        return say("not_in_notes", lang) + (say("closest_section", lang, where=closest) if closest else ""), []
    p = good[0]
    return say("from_notes", lang, where=p.address) + excerpt(p.text), [{"source": q.source, "heading": q.heading} for q in good[:2]]


def _run_agent(agent, inputs: dict, stream: TextStream | None) -> str:
    """The agent's final answer; with ``stream``, the text of each model call is streamed as it arrives and
    dropped again when that call turns out to be a tool call rather than the answer."""
    if stream is None:
        return agent.invoke(inputs)["messages"][-1].text.strip()
    final = ""
    for mode, data in agent.stream(inputs, stream_mode=["messages", "values"]):
        if mode == "values":
            final = data["messages"][-1].text if data.get("messages") else final
            continue
        chunk = data[0]
        if isinstance(chunk, ToolMessage) or getattr(chunk, "tool_call_chunks", None):
            stream.reset()
        elif isinstance(chunk, AIMessageChunk) and isinstance(chunk.text, str) and chunk.text:
            stream.push(chunk.text)
    return final.strip()


def answer_with_agent(question: str, retriever: Retriever, model, lang: str,
                      stream: TextStream | None = None) -> tuple[str, list[dict]]:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    from interviewer.prompts import fence, render

    found: list[Passage] = []

    @tool
    def search_notes(query: str) -> str:
        """Search the interview notes; returns passages with their citation (source § heading)."""
        hits = retriever.search(query, k=3)
        found.extend(hits)
        return "\n\n".join(f"[{p.address}]\n{p.text[:600]}" for p in hits) or "(no results)"

    agent = create_agent(bounded(model, "reverse"), [search_notes], system_prompt=render("reverse", lang=language_name(lang)))
    text = _run_agent(agent, {"messages": [{"role": "user", "content": fence(question, "candidate_question")}]}, stream)
    cites = []
    for p in found:
        c = {"source": p.source, "heading": p.heading}
        if p.address in text and c not in cites:
            cites.append(c)
    if not text:
        raise ValueError("empty agent answer")
    if not cites and "不知道" not in text and "不确定" not in text and "don't know" not in text.lower():
        raise ValueError("agent answer cites no notes")
    return text, cites


def answer_question(question: str, retriever: Retriever | None, model, lang: str, deadline_s: float,
                    pool: Executor, stream: TextStream | None = None) -> tuple[str, list[dict]]:
    """The interviewer's answer and its citations; the agent when a model is configured (its answer streamed
    into ``stream``), else offline."""
    if model is None or retriever is None or (len(_technical_words(question)) < 3 and faq_answer(question, lang) is not None):
        return answer_offline(question, retriever, lang)
    try:
        return pool.submit(answer_with_agent, question, retriever, model, lang, stream).result(timeout=deadline_s)
    except Exception:
        return answer_offline(question, retriever, lang)


def reverse_node(ctx: Context, state: State) -> dict:
    """Answer one of the candidate's questions; after enough of them (or "没有了") the stage is graded."""
    current = OpenQuestion.load(state.get("current"))
    lang = state.get("lang", "zh")
    text = state["inbox"]["text"]
    stage = ctx.situation(state).stage
    log = list(current.reverse_log)
    messages = list(state["messages"])
    done = closes_stage(text)
    if not done:
        sid = state.get("session_id") or ""
        stream = TextStream(clean=str.strip)
        with stream.listening(ctx.listeners.get(sid)):
            answer, cites = answer_question(text, ctx.retriever, ctx.model, lang, max(0.1, ctx.budget(sid, 0.8)), ctx.pool, stream)
        log.append({"question": text, "answer": answer, "citations": cites})
        messages.append(message(answer, kind="reverse_answer", citations=cites))
        done = len(log) >= stage.candidate_asks
        if not done:
            messages.append(message(say("anything_else", lang), kind="notice"))
    current.reverse_log = log or ([{"question": text, "answer": "", "citations": []}] if done else [])
    return {"current": current.dump(), "messages": messages, "route": "grade" if done else "end"}
