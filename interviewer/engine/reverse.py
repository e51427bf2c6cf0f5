"""The reverse stage: the candidate's own questions, answered from the notes only (the ``reverse`` graph node).

With a model: a LangChain agent (``create_agent``) with one tool, notes search; it must cite the
notes or say it does not know. Offline: the best matching note section, quoted with its citation,
or an honest "not in the notes".
"""

from __future__ import annotations

import re
from concurrent.futures import Executor

from langchain_core.messages import AIMessageChunk, ToolMessage

from interviewer.engine.context import Context
from interviewer.engine.prefetch import TextStream
from interviewer.engine.state import OpenQuestion, State, message
from interviewer.messages import language_name, say
from interviewer.search.retrieval import Passage, Retriever, content_words

NO_MORE = re.compile(r"^\s*(没有了?|没了|没有问题了?|暂时没有|就这些|no more|nothing else|no(, thanks)?|that'?s all)\W*$", re.IGNORECASE)
MIN_SHARED_WORDS = 0.5  # share of the question's content words that the passage must contain


def _relevant(question: str, passage: Passage) -> bool:
    """The passage names at least half of the question's content words (jieba words, code symbols)."""
    q = content_words(question)
    return bool(q) and len(q & content_words(passage.heading + " " + passage.text)) / len(q) >= MIN_SHARED_WORDS


def answer_offline(question: str, retriever: Retriever | None, lang: str) -> tuple[str, list[dict]]:
    passages = retriever.search(question, k=3) if retriever else []
    good = [p for p in passages if _relevant(question, p)]
    if not good:
        return say("not_in_notes", lang), []
    p = good[0]
    excerpt = p.text.strip().replace("\n", " ")[:260]
    lead = say("from_notes", lang, where=p.address)
    return lead + excerpt, [{"source": q.source, "heading": q.heading} for q in good[:2]]


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

    agent = create_agent(model, [search_notes], system_prompt=render("reverse", lang=language_name(lang)))
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
    if model is None or retriever is None:
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
    done = bool(NO_MORE.match(text))
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
