"""The notes index and hybrid search: real Chroma on disk, incremental updates, own notes, a Chroma server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interviewer.config import Settings
from interviewer.resources import KNOWLEDGE_DIR
from interviewer.search.index import build_index, collect_chunks, open_collection, split_long
from interviewer.search.retrieval import Retriever, tokenize

MINI_NOTE = """---
topic: mini
---
# 小笔记

## 块表映射
逻辑块号通过 block table 映射到物理块号，物理块不必连续。

## 调度顺序
先处理 decode 队列，再换回 swapped 请求，最后接纳 waiting 队列里的新请求。
"""


def test_tokenize_keeps_code_symbols_and_chinese_words():
    toks = tokenize("ProcessWaitingQueue 先查 prefix cache 吗")
    assert "processwaitingqueue" in toks and "waiting" in toks and "queue" in toks
    assert "prefix" in toks and "cache" in toks
    assert "吗" not in toks


def test_split_long_keeps_every_character_and_respects_the_limit():
    text = "\n".join("段落" * 40 for _ in range(10))
    parts = split_long(text, 200)
    assert all(len(p) <= 200 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_search_finds_paraphrased_chinese_and_symbols(shared_retriever):
    hits = shared_retriever.search("为什么生成每个新字时不用把前面的字重新算一遍", k=5)
    assert any(h.source.startswith("Day1_") for h in hits)
    hits = shared_retriever.search("ProcessWaitingQueue 先查什么", k=5)
    assert any(h.source.startswith("Day4_") for h in hits)
    assert all(h.address == f"{h.source} § {h.heading}" for h in hits)


def test_topic_filter_restricts_results(shared_retriever):
    hits = shared_retriever.search("block table", k=5, topic="ksanallm")
    assert hits and all(h.topic == "ksanallm" for h in hits)


def test_empty_query_returns_nothing(shared_retriever):
    assert shared_retriever.search("   ") == []


def test_incremental_index_embeds_only_changes_and_drops_deleted_files(tmp_path, indexed_settings):
    own = tmp_path / "own"
    own.mkdir()
    (own / "mine.md").write_text(MINI_NOTE, encoding="utf-8")
    build_index(indexed_settings)  # in step with the built-in notes first
    settings = indexed_settings.with_(notes_dirs=(own,))
    first = build_index(settings)
    assert first.added == 2 and first.updated == 0 and first.removed == 0
    again = build_index(settings)
    assert again.added == again.updated == again.removed == 0 and again.unchanged == again.total
    (own / "mine.md").write_text(MINI_NOTE.replace("最后接纳", "最后才接纳"), encoding="utf-8")
    changed = build_index(settings)
    assert changed.updated == 1 and changed.added == 0
    hits = Retriever(settings).search("块表 物理块 不连续", k=3, origin="own")
    assert hits and hits[0].origin == "own" and hits[0].source == "mine.md"
    (own / "mine.md").unlink()
    gone = build_index(settings)
    assert gone.removed == 2
    assert Retriever(settings).search("块表 物理块 不连续", k=3, origin="own") == []


def test_broken_note_files_are_skipped_with_a_message(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "binary.md").write_bytes(b"\x00\x01\x02PNG")
    (own / "latin1.md").write_bytes("caf\xe9 ## heading".encode("latin-1"))
    (own / "huge.txt").write_text("x" * 2_100_000)
    (own / "ok.md").write_text(MINI_NOTE, encoding="utf-8")
    chunks, skipped = collect_chunks(Settings(data_dir=tmp_path / "d", notes_dirs=(own, tmp_path / "missing")))
    joined = "\n".join(skipped)
    assert "binary.md" in joined and "latin1.md" in joined and "huge.txt" in joined and "missing" in joined
    assert any(c.source == "ok.md" and c.origin == "own" for c in chunks)


def test_search_cli_json(tmp_path, built_index):
    import shutil

    shutil.copytree(built_index / "index", tmp_path / "index")
    out = subprocess.run([sys.executable, "-m", "interviewer", "--data-dir", str(tmp_path), "search", "copy-on-write 引用计数",
                          "--k", "3", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 3 and {"source", "heading", "text", "score"} <= set(rows[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chroma_server_mode(tmp_path):
    """The same code indexes and searches through a real `chroma run` server on 127.0.0.1."""
    chroma = Path(sys.executable).with_name("chroma")
    port = _free_port()
    proc = subprocess.Popen([str(chroma), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "srv")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.3)
        own = tmp_path / "own"
        own.mkdir()
        (own / "mine.md").write_text(MINI_NOTE, encoding="utf-8")
        settings = Settings(data_dir=tmp_path / "d", chroma_host="127.0.0.1", chroma_port=port, notes_dirs=(own,))
        chunks, _ = collect_chunks(settings)
        mine = [c for c in chunks if c.origin == "own"]
        collection = open_collection(settings)
        report = build_index(settings, collection=collection, chunks=mine)
        assert report.added == 2
        assert collection.count() == 2
        hits = Retriever(settings, collection).search("先处理 decode 再接纳新请求", k=1)
        assert hits[0].heading == "调度顺序"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _okapi_reference(corpus: list[list[str]], query: list[str], k1=1.5, b=0.75, eps=0.25) -> list[float]:
    """Okapi BM25 written out document by document (rank_bm25's variant: negative idf floored at eps × mean idf)."""
    import math

    n, avgdl = len(corpus), sum(map(len, corpus)) / len(corpus)
    vocab = {w for doc in corpus for w in doc}
    idf = {w: math.log(n - sum(w in d for d in corpus) + 0.5) - math.log(sum(w in d for d in corpus) + 0.5) for w in vocab}
    floor = eps * sum(idf.values()) / len(idf)
    idf = {w: v if v >= 0 else floor for w, v in idf.items()}
    return [sum(idf.get(q, 0) * d.count(q) * (k1 + 1) / (d.count(q) + k1 * (1 - b + b * len(d) / avgdl)) for q in query)
            for d in corpus]


def test_bm25_matches_the_okapi_formula_and_ranks_ties_in_order():
    from interviewer.search.retrieval import Bm25

    corpus = [["kv", "cache", "显存"], ["kv", "block", "table", "kv"], ["kv", "调度"], ["prefill", "decode", "kv"], ["kv", "cache"]]
    index = Bm25(corpus)
    for query in (["kv"], ["cache", "cache"], ["block", "kv", "未知"], ["调度", "prefill"], []):
        assert index.scores(query) == pytest.approx(_okapi_reference(corpus, query, Bm25.K1, Bm25.B), abs=1e-12)
    assert list(index.ranked(["cache"])) == [4, 0]  # the shorter document first; no zero scores
    assert list(index.ranked(["没有"])) == []
    assert list(Bm25([["a", "x"], ["b", "y"], ["a", "z"]]).ranked(["a"])) == [0, 2]  # equal scores keep index order


def test_a_new_embedding_engine_makes_the_index_stale(indexed_settings, monkeypatch):
    """Vectors from another engine are not reused: the engine id is in both hashes, so the next start re-embeds."""
    import interviewer.search.index as index

    assert index.index_is_current(indexed_settings)
    chunk = collect_chunks(indexed_settings)[0][0]
    before = (chunk.content_hash, chunk.embed_hash)
    monkeypatch.setattr(index, "active_engine", lambda: "another-engine")
    assert chunk.content_hash != before[0] and chunk.embed_hash != before[1]
    assert not index.index_is_current(indexed_settings)


def test_shipped_vectors_cover_the_built_in_notes(tmp_path):
    """A fresh install indexes the built-in notes without embedding them. Fails when the notes changed and
    knowledge/vectors/builtin-e5.npz was not refreshed: run `python -m devtools.ship_vectors`."""
    from interviewer.search.shipped import shipped_vectors

    chunks, _ = collect_chunks(Settings(data_dir=tmp_path))
    missing = [c.address for c in chunks if c.origin == "builtin" and c.embed_hash not in shipped_vectors()]
    assert not missing, f"{len(missing)} built-in chunks have no shipped vector (run python -m devtools.ship_vectors): {missing[:3]}"


def test_a_fresh_index_uses_the_shipped_vectors(tmp_path, monkeypatch):
    import numpy as np

    import interviewer.search.index as index

    embedded: list[int] = []
    real = index.E5Embedding.__call__
    monkeypatch.setattr(index.E5Embedding, "__call__", lambda self, input: embedded.append(len(input)) or real(self, input))
    own = tmp_path / "own"
    own.mkdir()
    (own / "mine.md").write_text("## 我的笔记\nPagedAttention 的 block table 把逻辑块映射到物理块。\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", notes_dirs=(own,))
    report = build_index(settings)
    assert report.added == report.total and sum(embedded) == 1, "only the candidate's own chunk is embedded"
    chunk = next(c for c in collect_chunks(settings)[0] if c.origin == "builtin")
    stored = np.array(open_collection(settings).get(ids=[chunk.id], include=["embeddings"])["embeddings"][0])
    fresh = np.array(real(index.E5Embedding(), [chunk.dense_text])[0])
    assert float(stored @ fresh) > 0.999  # the shipped vector is the encoder's (stored as float16)


def test_every_built_in_section_has_its_questions_and_each_names_a_section(tmp_path):
    """knowledge/section_questions/ must follow the notes: a renamed heading would silently drop its questions."""
    from interviewer.search.index import section_questions

    chunks, _ = collect_chunks(Settings(data_dir=tmp_path))
    sections = {c.address for c in chunks if c.origin == "builtin"}
    asked = section_questions()
    assert set(asked) <= sections, sorted(set(asked) - sections)[:5]
    assert sections <= set(asked), sorted(sections - set(asked))[:5]
    assert all(len(q) >= 20 for q in asked.values())


def test_a_section_is_found_by_the_words_of_its_questions_not_only_its_own(shared_retriever):
    """How people ask about PD disaggregation's downside ("拆开部署…不划算") is not in the section's text or heading;
    its section questions carry those words into the lexical half."""
    section = "专题_投机解码与PD进阶_笔记.md § PD 分离：传多少 KV、什么时候划算 › PD 分离什么时候输"
    text = (KNOWLEDGE_DIR / "notes" / "专题_投机解码与PD进阶_笔记.md").read_text(encoding="utf-8")
    assert "拆开" not in text and "不划算" not in text
    got = [p.address for p in shared_retriever.search("提示处理和生成拆开部署，什么时候不划算", k=5, mode="lexical")]
    assert section in got, got
