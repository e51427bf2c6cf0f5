"""Wiring: settings → index → retriever → model → interviewer, for the app, the CLI and the bench."""

from __future__ import annotations

import os
from dataclasses import dataclass

from interviewer.config import Settings
from interviewer.engine.session import Interviewer
from interviewer.engine.store import SessionStore
from interviewer.models import build_chat_model
from interviewer.practice.ledger import Ledger
from interviewer.search.index import Progress, build_index, index_is_current, open_collection
from interviewer.search.retrieval import Retriever


def quiet_environment() -> None:
    """No telemetry, analytics or hub look-ups from the libraries we use."""
    for key, value in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                       "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false"}.items():
        os.environ.setdefault(key, value)


@dataclass
class Services:
    settings: Settings
    retriever: Retriever
    interviewer: Interviewer
    model: object | None


def ensure_index(settings: Settings, progress: Progress | None = None, collection=None) -> None:
    collection = collection or open_collection(settings)
    if not index_is_current(settings, collection):
        build_index(settings, progress, collection)


def build_services(settings: Settings, progress: Progress | None = None, model=None, index: bool = True) -> Services:
    quiet_environment()
    collection = open_collection(settings)
    if index:
        ensure_index(settings, progress, collection)
    retriever = Retriever(settings, collection)
    model = model if model is not None else build_chat_model(settings)
    store = SessionStore(settings.db_path)
    ledger = Ledger(settings.ledger_path)
    return Services(settings, retriever, Interviewer(settings, retriever, model, store, ledger=ledger), model)
