"""Rewrite ``knowledge/vectors/builtin-e5.npz`` (the vectors of every built-in note chunk, so a fresh install
starts without embedding them) and ``bank-e5.npz`` (the bank's questions for the grader's topic map). Run after
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
    calibration.topic_map.cache_clear()
    texts = [calibration.question_text(q) for q in default_bank().values() if q.stage in ("technical", "drill") and not q.variant_of]
    n = write_shipped(zip([calibration.text_key(t) for t in texts], meaning.ENCODER.vectors(texts, cache=True)), calibration.BANK_VECTORS)
    print(f"{calibration.BANK_VECTORS}: {n} question vectors ({calibration.BANK_VECTORS.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
