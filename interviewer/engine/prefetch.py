"""Preparing the next question while the answer is graded, and streaming its wording as it arrives.

With a model, a turn makes two slow calls: the grade, then the wording of the follow-up it leads to.
The engine guesses the move from the offline grade (fast, and computed anyway) and starts the
wording at once, beside the model's grade. When the model's grade leads to the same move, the
prepared wording is used, so the turn costs the longer of the two calls instead of their sum; when
it does not, the guess is dropped and the real move is worded. Routing never depends on the guess.

Text a model is still producing is a :class:`TextStream`: a listener (the browser) attached late is
given what has arrived so far, then every new piece, as the cleaned text so far.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

Listener = Callable[[str], None]
CITATION_MARK = re.compile(r"\s*\[(\d+)\]")  # group 1: the passage number
OPEN_MARK = re.compile(r"\s*\[\d*$")  # a marker cut in half at the end of what has arrived


def visible_text(raw: str) -> str:
    """What the candidate should see of a follow-up being written: without the ``[n]`` citation markers."""
    return OPEN_MARK.sub("", CITATION_MARK.sub("", raw)).strip()


class TextStream:
    """Pieces of text pushed from a worker thread; at most one listener, which may attach at any time."""

    def __init__(self, clean: Callable[[str], str] = visible_text) -> None:
        self._clean = clean
        self._raw = ""
        self._listener: Listener | None = None
        self._lock = threading.Lock()

    def push(self, piece: str) -> None:
        with self._lock:
            self._raw += piece
            listener, text = self._listener, self._clean(self._raw)
        if listener and text:
            _safe(listener, text)

    def reset(self) -> None:
        """Start over (an agent's model call that ended in a tool call, not in the answer)."""
        with self._lock:
            self._raw = ""

    def attach(self, listener: Listener | None) -> None:
        with self._lock:
            self._listener = listener
            text = self._clean(self._raw)
        if listener and text:
            _safe(listener, text)

    def detach(self) -> None:
        with self._lock:
            self._listener = None

    @contextmanager
    def listening(self, listener: Listener | None) -> Iterator[None]:
        """``listener`` sees the text (what has arrived so far, then every piece) until the block ends."""
        self.attach(listener)
        try:
            yield
        finally:
            self.detach()

    @property
    def text(self) -> str:
        with self._lock:
            return self._clean(self._raw)


def _safe(listener: Listener, text: str) -> None:
    try:
        listener(text)
    except Exception:  # noqa: BLE001 - a broken listener (a closed page) must not break the turn
        pass


@dataclass
class Prepared:
    """A follow-up being worded in the background, keyed by the move it words."""

    key: tuple
    future: Future
    stream: TextStream = field(default_factory=TextStream)


def move_key(move: dict) -> tuple:
    """Two moves are the same when they target the same rubric item with the same authored text."""
    return (move.get("kind"), tuple(move.get("target") or ()), move.get("text"))


@dataclass
class PrefetchStats:
    """How often the guess was right: ``hit`` used, ``miss`` dropped, ``late`` a follow-up nobody guessed."""

    hit: int = 0
    miss: int = 0
    late: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, outcome: str) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"hit": self.hit, "miss": self.miss, "late": self.late}
