"""The Gradio app driven through its named API with gradio_client (no browser).

The app runs in-process on a free loopback port (``launch(..., prevent_thread_lock=True)``) over a
private copy of the notes index built once per test run (``built_index`` in conftest).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from interviewer.config import Settings
from interviewer.ui.handlers import VIEW

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BANDS = {"流畅", "基本", "卡顿", "不会"}
SELF_INTRO = ("我是某大学计算机专业的研究生，方向是分布式系统。对推理优化感兴趣，是因为部署模型时发现 decode 阶段 GPU 大量闲置。"
              "为面试我跑了 vLLM 实践，也读了 KsanaLLM 的调度源码。希望加入腾讯混元，参与一念 LLM 的推理优化。")
KV_ANSWER = ("KV Cache 把历史 token 的 K、V 存下来，每步 decode 只为新 token 计算 Q、K、V 并追加进缓存，不用把前缀重新 forward。"
             "因为因果 mask，历史 token 的 K、V 不会改变，所以可以复用且结果无损。代价是显存随序列长度线性增长。")
XSS = "我的回答 <img src=x onerror=alert(1)> <script>alert(2)</script> ![t](http://example.com/t.png) [点我](http://example.com)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def services(built_index: Path, tmp_path_factory):
    from interviewer.services import build_services

    data = tmp_path_factory.mktemp("ui-api")
    shutil.copytree(built_index / "index", data / "index")
    return build_services(Settings(data_dir=data, port=free_port()))


@pytest.fixture(scope="module")
def app(services):
    from interviewer.facade import InterviewApp
    from interviewer.ui.layout import launch

    demo = launch(InterviewApp(services), prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{services.settings.port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[1], verbose=False)


def texts(chat: list[dict]) -> list[tuple[str, str]]:
    """(role, text) of each chat message as gradio_client returns them (content is a list of parts)."""
    out = []
    for m in chat:
        content = m["content"]
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append((m["role"], content))
    return out


def last_bot(chat: list[dict]) -> str:
    return [t for r, t in texts(chat) if r == "assistant"][-1]


# Output positions of the interview endpoints, from their names (ui.handlers.VIEW); gradio_client leaves out
# the report column (a layout block, not a value).
CLIENT_VIEW = [name for name in VIEW if name != "report_box"]
SID, CHAT, PANEL, REPORT, DL_JSON, DL_MD, DL_HTML, DL_ANKI, STATUS = (CLIENT_VIEW.index(name) for name in (
    "sid", "chat", "panel", "report", "download_json", "download_md", "download_html", "download_anki", "status"))


@pytest.mark.timeout(600)
def test_interview_through_the_api(client, services, tmp_path):
    out = client.predict("", api_name="/new_session")
    sid = out[SID]
    assert services.interviewer.exists(sid)
    assert "自我介绍" in last_bot(out[CHAT])
    assert 'id="' not in out[PANEL] and "第一阶段" in out[PANEL] and "answer-timer" in out[PANEL]

    out = client.predict(sid, SELF_INTRO, api_name="/send")
    assert out[-1] == ""  # the answer box is cleared after a successful send
    bots = [t for r, t in texts(out[CHAT]) if r == "assistant"]
    assert any("grade-card" in t for t in bots), "a grade card follows the answer"
    assert "参考答案" in next(t for t in bots if "grade-card" in t), "self_intro is closed: its reference shows"
    assert "KV Cache" in bots[-1]

    out = client.predict(sid, KV_ANSWER, api_name="/send")
    card = [t for r, t in texts(out[CHAT]) if r == "assistant" and "grade-card" in t][-1]
    assert any(band in card for band in BANDS)

    out = client.predict(sid, api_name="/hint")  # a command button
    assert "提示" in last_bot(out[CHAT])

    out = client.predict(sid, "/harder ksana", api_name="/send")  # the same command typed in chat
    bot = last_bot(out[CHAT])
    assert "KsanaLLM" in bot and "来自笔记" in bot and "<details" in bot

    out = client.predict(sid, XSS, api_name="/send")
    user = [t for r, t in texts(out[CHAT]) if r == "user"][-1]
    assert "<img" not in user and "<script" not in user and "](" not in user and "![" not in user
    assert "&#60;img" in user

    out = client.predict(sid, "基本", api_name="/rate")
    assert "基本" in last_bot(out[CHAT]) and out[-1] is None

    out = client.predict(sid, api_name="/end")
    assert "面试报告" in out[REPORT]
    path = Path(out[DL_JSON])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["session_id"] == sid and data["turns"]
    assert all(t["grade"]["band"] in BANDS for t in data["turns"])
    assert any(t["self_rating"] == "基本" for t in data["turns"])
    assert any(t["answer"] == XSS for t in data["turns"]), "the export keeps the candidate's raw text"
    anki = Path(out[DL_ANKI]).read_text(encoding="utf-8")  # one card per missed point, importable by Anki
    assert anki.startswith("#separator:Comma") and "回看笔记" in anki
    for p in (out[DL_MD], out[DL_HTML], out[DL_ANKI]):
        assert Path(p).read_text(encoding="utf-8")
    html_export = Path(out[DL_HTML]).read_text(encoding="utf-8")
    assert "<img src=x" not in html_export and "<script>alert" not in html_export

    again = client.predict(sid, api_name="/export")
    assert json.loads(Path(again[DL_JSON]).read_text(encoding="utf-8"))["session_id"] == sid
    assert Path(services.settings.exports_dir, f"interview-{sid[:12]}.json").is_file()

    listed = client.predict(api_name="/list_sessions")
    assert listed == sid or sid in str(listed)
    resumed = client.predict(sid, api_name="/resume")
    assert texts(resumed[CHAT]) == texts(out[CHAT])


def test_errors_keep_the_typed_answer(client):
    out = client.predict("no-such-session", "我写了很长的回答", api_name="/send")
    assert out[-1] in ({"__type__": "update"}, "我写了很长的回答")  # "no change": the box keeps the text
    assert "没有进行中的面试" in out[STATUS]


def test_page_load_resumes_and_never_duplicates(app, services):
    handlers = app[0].handlers
    before = len(services.interviewer.store.list(limit=1000))
    first = handlers.restore("")["sid"]
    second = handlers.restore("")["sid"]  # a refresh before the browser stored the id: the untouched session is reused
    assert first == second
    assert handlers.restore(first)["sid"] == first
    assert len(services.interviewer.store.list(limit=1000)) <= before + 1
    services.interviewer.send(first, "/hint")  # touched now: a browser without an id gets a new one
    third = handlers.restore("")["sid"]
    assert third != first and handlers.restore(first)["sid"] == first


def test_settings_never_echo_the_api_key(client, services):
    from interviewer.ui.handlers import MODE_OFFLINE, MODE_OPENAI

    secret = "sk-test-SECRET-ui-123"
    status, key_field = client.predict(MODE_OPENAI, "stub-model", "http://127.0.0.1:9/v1", secret, "zh", "each",
                                       api_name="/apply_settings")
    assert secret not in status and secret not in json.dumps(key_field)
    assert (key_field.get("value") if isinstance(key_field, dict) else key_field) == ""
    assert services.settings.api_key == secret and services.interviewer.model is not None
    saved = services.settings.saved_path.read_text(encoding="utf-8")
    assert secret not in saved and "stub-model" in saved  # kept for the next start, without the key
    restarted, warning = Settings(data_dir=services.settings.data_dir).with_saved()
    assert not warning and restarted.model == "stub-model" and restarted.base_url == "http://127.0.0.1:9/v1"
    assert restarted.api_key == ""
    status, key_field = client.predict(MODE_OFFLINE, "", "", "", "zh", "each", api_name="/apply_settings")
    assert services.interviewer.model is None and secret not in json.dumps(key_field)
    assert Settings(data_dir=services.settings.data_dir).with_saved()[0].offline
    assert secret not in json.dumps(client.predict("", api_name="/new_session")[:2], ensure_ascii=False)


def test_audit_tab_reports_findings(client, tmp_path):
    note = tmp_path / "我的笔记.md"
    note.write_text("# KsanaLLM\n\nPP multi-batch 让跨机通信降低 98.3%。\n", encoding="utf-8")
    table, status = client.predict(str(note), api_name="/audit")
    rows = table["data"]
    assert rows and rows[0][0].endswith("我的笔记.md") and rows[0][1] == 3
    assert "98.3%" in rows[0][3] or "98.3%" in rows[0][4]
    table, status = client.predict(str(tmp_path / "missing"), api_name="/audit")
    assert "无法读取" in status or "没有" in status


def test_feedback_at_the_end_hides_grades_until_the_report(client, services):
    from interviewer.ui.handlers import MODE_OFFLINE

    client.predict(MODE_OFFLINE, "", "", "", "zh", "end", api_name="/apply_settings")
    try:
        out = client.predict("", api_name="/new_session")
        sid = out[SID]
        out = client.predict(sid, SELF_INTRO, api_name="/send")
        assert not any("grade-card" in t for _, t in texts(out[CHAT]))
        assert "评分在结束时显示" in out[PANEL] and "分阶段得分" not in out[PANEL]
        out = client.predict(sid, api_name="/end")
        assert "面试报告" in out[REPORT] and "grade-card" in out[REPORT]
    finally:
        client.predict(MODE_OFFLINE, "", "", "", "zh", "each", api_name="/apply_settings")


def test_reindex_adds_and_removes_own_notes(client, services, tmp_path):
    notes = tmp_path / "my-notes"
    notes.mkdir()
    (notes / "调度.md").write_text("# 我的调度笔记\n\n## 块表\n逻辑块号通过 block table 映射到物理块号，物理块不必连续。\n", encoding="utf-8")
    status = client.predict(str(notes), api_name="/reindex")
    assert "索引完成" in status
    assert services.settings.notes_dirs == (notes,) and services.interviewer.settings.notes_dirs == (notes,)
    assert any(a.startswith("调度.md § ") for a in services.retriever.addresses())
    assert Settings(data_dir=services.settings.data_dir).with_saved()[0].notes_dirs == (notes,)  # indexed again at restart
    assert "找不到" in client.predict(str(tmp_path / "nope"), api_name="/reindex")
    status = client.predict("", api_name="/reindex")  # back to the built-in notes only
    assert "索引完成" in status and not any(a.startswith("调度.md") for a in services.retriever.addresses())


def test_new_session_with_another_plan(client, services):
    out = client.predict("", "drill", api_name="/new_session")
    assert services.interviewer.state(out[SID])["plan_id"] == "drill"
    assert "快问快答" in out[PANEL]
    out = client.predict(out[SID], "不知道", api_name="/send")
    assert "grade-card" in "".join(t for _, t in texts(out[CHAT]))
