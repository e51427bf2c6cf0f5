"""When each question and key point comes back: FSRS (the ``fsrs`` package), deterministic (no fuzzing, card ids
from the item id), with ratings read from the grade — a 不会 returns within hours, a 流畅 after days or weeks, and
every hint used costs one rating step."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from fsrs import Card, Rating, Scheduler

BAND_RATING = {"不会": Rating.Again, "卡顿": Rating.Hard, "基本": Rating.Good, "流畅": Rating.Easy}
SCHEDULER = Scheduler(learning_steps=(timedelta(hours=6),), relearning_steps=(timedelta(hours=6),), enable_fuzzing=False)


def point_rating(covered: float, hints: int) -> Rating:
    """A point: missed → Again, partly → Hard, covered → Good; each hint one step lower."""
    base = Rating.Good if covered >= 0.75 else Rating.Hard if covered > 0 else Rating.Again
    return Rating(max(int(Rating.Again), int(base) - hints))


def question_rating(band: str, hints: int) -> Rating:
    return Rating(max(int(Rating.Again), int(BAND_RATING.get(band, Rating.Again)) - hints))


def new_card(item_id: str) -> Card:
    return Card(card_id=zlib.crc32(item_id.encode("utf-8")) or 1)


def review(card: Card, rating: Rating, at: datetime) -> Card:
    """The card after a review at ``at``. A clock that went backwards never moves a review before the last one,
    so no due item is lost or made due earlier by a wrong clock."""
    if card.last_review is not None and at < card.last_review:
        at = card.last_review
    card, _log = SCHEDULER.review_card(card, rating, review_datetime=at)
    return card
