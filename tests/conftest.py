"""Fixtures shared by all tests: hermetic settings, stub model and stub server, the notes index built once.

Outbound network is refused by pytest-socket, configured once in pyproject.toml (``--allow-hosts`` loopback,
``--allow-unix-socket``); live model endpoints are refused by the model factory's switch (set here).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` run from anywhere still imports the package
    sys.path.insert(0, str(ROOT))

# Set before any test module is imported (gradio and the HF hub read these at import time).
HERMETIC_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
}
os.environ.update(HERMETIC_ENV)
for _key in ("NO_PROXY", "no_proxy"):  # a proxy set on a developer machine must not see the stub server
    _hosts = [h for h in os.environ.get(_key, "").split(",") if h]
    os.environ[_key] = ",".join(dict.fromkeys([*_hosts, "127.0.0.1", "localhost", "::1"]))

from devtools.doubles.chat_model import StubChatModel, register_stub_provider  # noqa: E402
from devtools.doubles.openai_server import StubOpenAIServer  # noqa: E402
from interviewer import models  # noqa: E402
from interviewer.config import Settings  # noqa: E402

DEFAULT_TEST_TIMEOUT_S = 60
STUB_API_KEY = "sk-test-SECRET-123"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A default pytest-timeout per test, unless one is configured (ini/command line) or marked."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    if config.getoption("timeout", None) or config.getini("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_S))


@pytest.fixture(scope="session", autouse=True)
def hermetic_session():
    """Live model endpoints are refused; the stub model is a provider of the real factory."""
    saved_env = {key: os.environ.get(key) for key in HERMETIC_ENV}
    os.environ.update(HERMETIC_ENV)
    was_allowed = models.model_requests_allowed()
    models.allow_model_requests(False)
    register_stub_provider()
    try:
        yield
    finally:
        models.allow_model_requests(was_allowed)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Offline settings whose data lives under ``tmp_path``."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def stub_model() -> StubChatModel:
    return StubChatModel()


@pytest.fixture
def stub_server():
    with StubOpenAIServer() as server:
        yield server


@pytest.fixture
def llm_settings(settings: Settings, stub_server: StubOpenAIServer) -> Settings:
    """Settings for the real ChatOpenAI talking to ``stub_server``."""
    return settings.with_(
        model="stub-model",
        base_url=stub_server.base_url,
        api_key=STUB_API_KEY,
        timeout_s=2.0,
        max_retries=1,
    )


# ---------------------------------------------------------------- the notes index, built once per run

@pytest.fixture(scope="session")
def built_index(tmp_path_factory) -> Path:
    """A data dir whose Chroma index holds the built-in notes. Built once per test run, or copied
    from ``INTERVIEWER_TEST_INDEX`` (a data dir prepared by scripts/test.sh) and brought up to date."""
    import shutil

    from interviewer.search.index import build_index

    data = tmp_path_factory.mktemp("built")
    src = os.environ.get("INTERVIEWER_TEST_INDEX")
    if src and (Path(src) / "index").is_dir():
        shutil.copytree(Path(src) / "index", data / "index")
    build_index(Settings(data_dir=data))
    return data


@pytest.fixture
def indexed_settings(tmp_path: Path, built_index: Path) -> Settings:
    """Offline settings with a private copy of the built index."""
    import shutil

    shutil.copytree(built_index / "index", tmp_path / "data" / "index")
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def shared_retriever(built_index: Path):
    """A retriever over the built index, for tests that only read."""
    from interviewer.search.retrieval import Retriever

    return Retriever(Settings(data_dir=built_index))
