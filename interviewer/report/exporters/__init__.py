"""Export formats: a registry of name → (file suffix, writer). Each format is one module in this package that
calls :func:`register`; every module here is loaded, so adding a format is adding one file. The UI offers one
download per registered format and ``interviewer report --format`` accepts every name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from interviewer.report.transcript import Transcript, TranscriptError


@dataclass(frozen=True)
class Exporter:
    name: str  # what --format and the download button call it
    suffix: str  # file name suffix, without the dot
    label: str  # the download button's text
    write: Callable[[Transcript], str]
    order: int = 50  # position among the downloads


_REGISTRY: dict[str, Exporter] = {}


def register(name: str, suffix: str, label: str, order: int = 50) -> Callable[[Callable[[Transcript], str]], Callable[[Transcript], str]]:
    """Decorator for a writer ``Transcript -> str``."""
    def add(write: Callable[[Transcript], str]) -> Callable[[Transcript], str]:
        _REGISTRY[name] = Exporter(name, suffix, label, write, order)
        return write
    return add


def exporters() -> list[Exporter]:
    """Every format, in download order."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.name))


def exporter(name: str) -> Exporter:
    _load_all()
    if name not in _REGISTRY:
        raise TranscriptError(f"unknown format {name!r}; use {', '.join(e.name for e in exporters())}")
    return _REGISTRY[name]


def render(t: Transcript, fmt: str) -> str:
    return exporter(fmt).write(t)


_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True
