"""Answering the candidate's own questions in the reverse stage, from the notes only.

With a model: a LangChain agent (``create_agent``) with one tool, notes search; it must cite the
notes or say it does not know. Offline: the best matching note section, quoted with its citation,
or an honest "not in the notes".
"""

from __future__ import annotations

from concurrent.futures import Executor

from langchain_core.messages import AIMessageChunk, ToolMessage

from interviewer.engine.prefetch import TextStream
from interviewer.search.retrieval import Passage, Retriever, content_words

MIN_SHARED_WORDS = 0.5  # share of the question's content words that the passage must contain


def _relevant(question: str, passage: Passage) -> bool:
    """The passage names at least half of the question's content words (jieba words, code symbols)."""
    q = content_words(question)
    return bool(q) and len(q & content_words(passage.heading + " " + passage.text)) / len(q) >= MIN_SHARED_WORDS


def answer_offline(question: str, retriever: Retriever | None, lang: str) -> tuple[str, list[dict]]:
    passages = retriever.search(question, k=3) if retriever else []
    good = [p for p in passages if _relevant(question, p)]
    if not good:
        return ("这个问题我的笔记里没有可靠的依据，我不确定，就不乱答了。" if lang == "zh" else
                "The notes have nothing reliable on that, so I don't know and won't guess."), []
    p = good[0]
    excerpt = p.text.strip().replace("\n", " ")[:260]
    lead = f"根据笔记（{p.address}）：" if lang == "zh" else f"From the notes ({p.address}): "
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

    agent = create_agent(model, [search_notes], system_prompt=render("reverse", lang="中文" if lang == "zh" else "English"))
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
