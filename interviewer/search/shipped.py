"""Vectors of the built-in notes that ship with the package (``knowledge/vectors/builtin-e5.npz``), so the first
start of a fresh install indexes the built-in notes without embedding them.

Keyed by each chunk's embed hash, which covers the engine id and the exact text embedded: a chunk whose text or
engine changed is simply not found and is embedded as usual, so a stale file costs time, never correctness.
``python -m devtools.ship_vectors`` rewrites the file after the notes change (a test says when it is due).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from interviewer.resources import KNOWLEDGE_DIR

SHIPPED = KNOWLEDGE_DIR / "vectors" / "builtin-e5.npz"


@lru_cache(maxsize=2)
def shipped_vectors(path: Path = SHIPPED) -> dict[str, np.ndarray]:
    """embed hash → unit vector (float32); empty when the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            hashes, vectors = data["hashes"], data["vectors"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return {}
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return {str(h): v for h, v in zip(hashes, vectors)}


def write_shipped(pairs: Iterable[tuple[str, np.ndarray]], path: Path = SHIPPED) -> int:
    """Write (embed hash, vector) pairs, sorted by hash (float16: the file stays small; cosine ≥ 0.9999)."""
    items = sorted(dict(pairs).items())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, hashes=np.array([h for h, _ in items]), vectors=np.stack([v for _, v in items]).astype(np.float16))
    shipped_vectors.cache_clear()
    return len(items)
