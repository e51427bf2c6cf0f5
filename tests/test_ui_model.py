"""The app with a model configured, through its HTTP API (gradio_client): the next question streams,
and every model fault still ends the turn with a graded, persisted answer and the next question.

The real ChatOpenAI in the app talks to a stub OpenAI-compatible server on 127.0.0.1; each fault test
points the app at a fresh server through the settings endpoint, as a user would.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from devtools.doubles.openai_server import StubOpenAIServer
from interviewer.config import Settings
from interviewer.ui.handlers import MODE_OPENAI
from tests.test_faults import FAULTS
from tests.test_prefetch import ANSWER, WORDED, Recorder
from tests.test_ui_api import CHAT, SID, STATUS, free_port, last_bot, texts

DEADLINE_S = 3.0
HTTP_SLACK_S = 1.5  # the browser round trip and the streaming throttle on top of the engine's deadline


@pytest.fixture(scope="module")
def stub():
    with StubOpenAIServer(chunk_chars=4, chunk_delay_s=0.02) as server:
        yield server


@pytest.fixture(scope="module")
def services(built_index: Path, tmp_path_factory, stub):
    from interviewer.services import build_services

    data = tmp_path_factory.mktemp("ui-model")
    shutil.copytree(built_index / "index", data / "index")
    settings = Settings(data_dir=data, port=free_port(), model="stub-model", base_url=stub.base_url, api_key="sk-ui-SECRET",
                        timeout_s=2.0, max_retries=1, turn_deadline_s=DEADLINE_S)
    services = build_services(settings)
    services.retriever.warm()
    return services


@pytest.fixture(scope="module")
def client(services):
    from gradio_client import Client

    from interviewer.facade import InterviewApp
    from interviewer.ui.layout import launch

    demo = launch(InterviewApp(services), prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{services.settings.port}/", verbose=False)
    demo.close()


def use_server(client, server: StubOpenAIServer) -> None:
    status, _key = client.predict(MODE_OPENAI, "stub-model", server.base_url, "sk-ui-SECRET", "zh", "each",
                                  api_name="/apply_settings")
    assert "已应用" in status, status


def open_at_kv_cache(client, services) -> str:
    sid = client.predict("", api_name="/new_session")[SID]
    while services.interviewer.state(sid)["current"]["question_id"] != "kv_cache":
        client.predict(sid, api_name="/skip")
    return sid


def test_the_next_question_streams_into_the_chat(client, services, stub):
    use_server(client, stub)
    stub.responder = Recorder({"causal_kv_fixed", "only_new_token"}, call_s=0.2)  # wording fits the 0.9 s it may take
    sid = open_at_kv_cache(client, services)
    job = client.submit(sid, ANSWER, api_name="/send")
    final = job.result(timeout=60)
    drafts = [texts(out[CHAT])[-1][1] for out in job.outputs()[:-1] if out[CHAT]]
    assert len(drafts) >= 2, "the question arrived in pieces"
    assert all("▍" in d for d in drafts) and "▍" not in last_bot(final[CHAT])
    words = WORDED.split("[")[0]
    assert any(words[:8] in d and words not in d for d in drafts), "a draft held part of the question"
    assert words in last_bot(final[CHAT])
    assert "来自笔记" in last_bot(final[CHAT])
    assert final[-1] == "", "the answer box is cleared once the turn is saved"
    assert services.interviewer.state(sid)["turns"][-1]["answer"] == ANSWER


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
def test_model_fault_through_the_app(fault: str, client, services):
    with StubOpenAIServer() as server:
        use_server(client, server)
        sid = open_at_kv_cache(client, services)
        FAULTS[fault](server)
        started = time.perf_counter()
        out = client.predict(sid, ANSWER, api_name="/send")
        wall = time.perf_counter() - started
    assert wall <= DEADLINE_S + HTTP_SLACK_S, f"{fault}: the candidate waited {wall:.1f} s"
    state = services.interviewer.state(sid)
    turn = state["turns"][-1]
    assert turn["answer"] == ANSWER, "the answer is persisted"
    assert "fallback" in turn["grade"]["grader"] and turn["grade"]["notice"]
    shown = "\n".join(t for _r, t in texts(out[CHAT]))
    assert "离线评分" in shown, "the fallback is said in the page"
    assert state["current"] and state["current"]["text"].split("？")[0] in shown, "the next question arrived"
    assert "error" not in (out[STATUS] or ""), out[STATUS]
    assert "sk-ui-SECRET" not in shown
