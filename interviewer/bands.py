"""The four bands of the candidate's own self-rating scale: thresholds, order, labels and colours.

Every score → band decision and every band colour in the UI and the exports comes from here.
"""

from __future__ import annotations

from typing import Literal

Band = Literal["流畅", "基本", "卡顿", "不会"]
BANDS: tuple[str, ...] = ("不会", "卡顿", "基本", "流畅")  # low → high; ``band_index`` is the position here
THRESHOLDS: tuple[tuple[int, str], ...] = ((85, "流畅"), (60, "基本"), (30, "卡顿"), (0, "不会"))
CSS_CLASS = {"流畅": "b4", "基本": "b3", "卡顿": "b2", "不会": "b1"}
COLOUR = {"流畅": "#2e7d32", "基本": "#1565c0", "卡顿": "#ef6c00", "不会": "#c62828"}
LABEL_EN = {"流畅": "fluent", "基本": "basic", "卡顿": "halting", "不会": "unknown"}
WEAK: frozenset[str] = frozenset({"卡顿", "不会"})  # answers the study plan sends back to the notes


def band_of(score: float) -> str:
    """流畅 ≥ 85, 基本 60–84, 卡顿 30–59, 不会 < 30."""
    return next(band for floor, band in THRESHOLDS if score >= floor)


def band_index(band: str) -> int:
    return BANDS.index(band)


def css_class(score_or_band: float | str) -> str:
    """The colour class (``b1``…``b4``) of a band or of the band a score falls in."""
    band = score_or_band if isinstance(score_or_band, str) else band_of(score_or_band)
    return CSS_CLASS.get(band, "")
