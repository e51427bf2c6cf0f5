"""Rewrite ``knowledge/vectors/builtin-e5.npz`` (the vectors of every built-in note chunk, so a fresh install
starts without embedding them) and ``bank-e5.npz`` (the bank's texts as the graders embed them: questions,
points, phrasings, references; the first grade of a question then embeds only the answer). Run after
changing the notes or the bank (tests say when it is due):

    python -m devtools.ship_vectors
"""

from __future__ import annotations

import sys
import tempfile
import time

from interviewer.config import Settings
from interviewer.grading import calibration, meaning
from interviewer.knowledge.bank import default_bank
from interviewer.search.index import E5Embedding, collect_chunks
from interviewer.search.shipped import SHIPPED, shipped_vectors, write_shipped


def main() -> int:
    chunks, skipped = collect_chunks(Settings(data_dir=tempfile.mkdtemp(prefix="ship-vectors-")))
    builtin = [c for c in chunks if c.origin == "builtin"]
    have = shipped_vectors()
    todo = [c for c in builtin if c.embed_hash not in have]
    started = time.perf_counter()
    fresh = dict(zip([c.embed_hash for c in todo], E5Embedding()([c.dense_text for c in todo]))) if todo else {}
    n = write_shipped((c.embed_hash, fresh.get(c.embed_hash, have.get(c.embed_hash))) for c in builtin)
    print(f"{SHIPPED}: {n} vectors ({len(todo)} embedded in {time.perf_counter() - started:.1f} s, "
          f"{SHIPPED.stat().st_size // 1024} KiB)" + (f"; skipped {skipped}" if skipped else ""))
    started = time.perf_counter()
    texts = calibration.rubric_texts(default_bank())
    n = write_shipped(zip([meaning.text_key(t) for t in texts], meaning.ENCODER.vectors(texts, cache=True)), meaning.SHIPPED_TEXTS)
    print(f"{meaning.SHIPPED_TEXTS}: {n} vectors of the bank's texts in {time.perf_counter() - started:.1f} s "
          f"({meaning.SHIPPED_TEXTS.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
