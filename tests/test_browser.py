"""The app in a real headless Chromium (Debian's /usr/bin/chromium, never `playwright install`).

One walk through an interview: first question, an answer and its grade card, the harder KsanaLLM
button with its note citations, a hint, HTML/script in an answer shown as text, a self-rating, a page
refresh that resumes the same session, the end with the report and the JSON download, and the layout
at 1366×768 and 420 px. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BANDS = {"流畅", "基本", "卡顿", "不会"}
BOT = '#chatbot [data-testid="bot"]'
USER = '#chatbot [data-testid="user"]'
MESSAGES = f"{BOT}, {USER}"
SELF_INTRO = ("我是某大学计算机专业的研究生，方向是分布式系统。对推理优化感兴趣，是因为部署模型时发现 decode 阶段 GPU 大量闲置。"
              "为面试我跑了 vLLM 实践，也读了 KsanaLLM 的调度源码。希望加入腾讯混元，参与一念 LLM 的推理优化。")
KV_ANSWER = ("KV Cache 把历史 token 的 K、V 存下来，每步 decode 只为新 token 计算 Q、K、V 并追加进缓存，不用把前缀重新 forward。"
             "代价是显存随序列长度线性增长。")
XSS = "PD 分离把 prefill 和 decode 放到不同节点。<img src=x onerror=alert(1)> <script>alert(2)</script> [点我](http://example.com)"


def _require_browser():
    """Chromium and playwright, or a skip (a failure in CI, where a missing browser is a broken setup)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium fonts-wqy-microhei)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python app.py --port N` in a subprocess with its own data dir; can be restarted on the same port."""

    def __init__(self, data: Path, **env: str) -> None:
        self.data, self.port = data, _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "INTERVIEWER_DATA_DIR": str(data), "GRADIO_TEMP_DIR": str(data / "gradio-tmp"),
                    "INTERVIEWER_MODEL": "offline", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "",
                    "INTERVIEWER_HOST": "127.0.0.1", "INTERVIEWER_FEEDBACK": "each", "INTERVIEWER_LANG": "zh",
                    "INTERVIEWER_NOTES": "", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1"} | env
        self.log = data / "app.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> None:  # the first start may still embed notes
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"app exited ({self.proc.returncode}):\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app did not start within {timeout} s:\n" + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def _running_app(built_index: Path, data: Path, **env: str):
    """The app over a private copy of the index built once per run (so start-up is quick)."""
    shutil.copytree(built_index / "index", data / "index")
    server = App(data, **env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def app(built_index: Path, tmp_path_factory):
    _require_browser()
    with _running_app(built_index, tmp_path_factory.mktemp("browser-data")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _shot(page, name: str, full: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def _wait_more(page, selector: str, count: int, timeout: float = 30_000) -> None:
    """Wait until more than ``count`` elements match (the chat re-renders whole after each reply)."""
    page.wait_for_function("([s, n]) => document.querySelectorAll(s).length > n", arg=[selector, count], timeout=timeout)


def _send(page, text: str, keys: bool = False) -> None:
    bots = page.locator(BOT).count()
    box = page.locator("#answer-box textarea")
    box.fill(text)
    if keys:
        box.press("Control+Enter")
    else:
        page.locator("#send").click()
    _wait_more(page, BOT, bots)
    page.wait_for_timeout(300)  # let the chat finish its render pass


def _click(page, elem_id: str) -> None:
    bots = page.locator(BOT).count()
    page.locator(f"#{elem_id}").click()
    _wait_more(page, BOT, bots)
    page.wait_for_timeout(300)


def _no_horizontal_scroll(page, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width + 1, f"page is {overflow}px wide in a {width}px window"


@pytest.mark.timeout(420)
def test_interview_in_the_browser(browser, app, tmp_path):  # browser first: skip before building anything
    from playwright.sync_api import expect

    dialogs: list[str] = []
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(app.url)

    # First question, the side panel and a running timer.
    expect(page.locator(BOT).first).to_contain_text("自我介绍", timeout=60_000)
    panel = page.locator("#stage-panel")
    expect(panel).to_contain_text("第一阶段")
    expect(panel).to_contain_text("本阶段要讲到")
    first_tick = panel.locator(".answer-timer .t").inner_text()
    page.wait_for_timeout(3100)
    assert panel.locator(".answer-timer .t").inner_text() != first_tick, "the answer timer runs in the page"
    _no_horizontal_scroll(page, 1366)
    _shot(page, "01-first-question")

    # Self intro → grade card → the KV cache question.
    _send(page, SELF_INTRO)
    expect(page.locator(BOT).last).to_contain_text("KV Cache")
    card = page.locator("#chatbot .grade-card").last
    expect(card).to_be_visible()
    assert any(band in card.inner_text() for band in BANDS)
    expect(page.locator("#answer-box textarea")).to_have_value("")
    _shot(page, "02-after-grade")

    _send(page, KV_ANSWER, keys=True)  # Ctrl+Enter sends too
    expect(page.locator("#chatbot .grade-card")).to_have_count(2)

    # Harder, KsanaLLM: the next interviewer message is a KsanaLLM question citing the notes.
    _click(page, "harder-ksana")
    last = page.locator(BOT).last
    expect(last).to_contain_text("KsanaLLM")
    expect(last).to_contain_text("来自笔记")
    expect(last.locator("details.cites")).to_have_count(1)
    _shot(page, "03-harder-ksana")

    _click(page, "hint")
    expect(page.locator(BOT).last).to_contain_text("提示")

    # HTML and script in an answer are shown as text and never run.
    users = page.locator(USER).count()
    _send(page, XSS)
    assert page.locator(USER).count() > users
    shown = page.locator(USER).nth(users).inner_text()
    assert "<img src=x onerror=alert(1)>" in shown and "<script>alert(2)</script>" in shown and "[点我](http://example.com)" in shown
    assert page.locator('#chatbot img[src="x"]').count() == 0
    assert page.locator("#chatbot script").count() == 0
    assert page.locator('#chatbot a[href="http://example.com"]').count() == 0

    # Self-rating of the last answer.
    bots = page.locator(BOT).count()
    page.locator("#self-rating").get_by_text("基本", exact=True).click()
    _wait_more(page, BOT, bots)
    expect(page.locator(BOT).last).to_contain_text("已记录自评：基本")

    # A refresh resumes the same session with the same messages, and a typed but unsent answer comes back.
    before = page.locator(MESSAGES).all_inner_texts()
    page.locator("#answer-box textarea").press_sequentially("还没发出去的回答")
    page.wait_for_timeout(500)  # the draft is kept in the browser's localStorage
    page.reload()
    expect(page.locator(BOT).last).to_contain_text("已记录自评：基本", timeout=30_000)
    assert page.locator(MESSAGES).all_inner_texts() == before
    expect(page.locator("#status")).to_contain_text("已恢复")
    expect(page.locator("#answer-box textarea")).to_have_value("还没发出去的回答")
    page.locator("#answer-box textarea").fill("")

    # An app restart (same data dir) also resumes it: the browser keeps the session id.
    app.stop()
    app.start(timeout=120)
    page.reload()
    expect(page.locator(BOT).last).to_contain_text("已记录自评：基本", timeout=30_000)
    assert page.locator(MESSAGES).all_inner_texts() == before
    expect(page.locator("#answer-box textarea")).to_have_value("")  # the draft was cleared with the box

    # The end: report with charts and study plan, then the JSON download.
    _click(page, "end")
    report = page.locator("#report")
    expect(report).to_contain_text("面试报告", timeout=30_000)
    expect(report).to_contain_text("分阶段得分")
    expect(report.locator(".bar-row").first).to_be_visible()
    _shot(page, "04-final-report", full=True)
    with page.expect_download(timeout=30_000) as download:
        page.locator("#download-json").click()
    path = tmp_path / "export.json"
    download.value.save_as(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["turns"] and all(t["grade"]["band"] in BANDS for t in data["turns"])
    assert any(t["self_rating"] == "基本" for t in data["turns"])
    assert any("<img src=x" in t["answer"] for t in data["turns"])

    # A narrow window: everything stacks, nothing scrolls sideways.
    page.set_viewport_size({"width": 420, "height": 900})
    page.wait_for_timeout(400)
    _no_horizontal_scroll(page, 420)
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "05-narrow-420")
    _shot(page, "06-narrow-420-full", full=True)

    # The other tabs render (Chinese labels, the password field for the key).
    page.set_viewport_size({"width": 1366, "height": 768})
    page.get_by_role("tab", name="设置").click()
    expect(page.locator("#api-key input")).to_have_attribute("type", "password")
    expect(page.locator("#api-key input")).to_have_value("")
    _shot(page, "07-settings")
    page.get_by_role("tab", name="会话").click()
    expect(page.locator("#sessions")).to_be_visible()
    _shot(page, "08-sessions")

    assert dialogs == [], f"a dialog opened: {dialogs}"
    context.close()


@pytest.mark.timeout(420)
def test_a_whole_interview_with_the_reverse_stage_and_the_html_report(browser, app, tmp_path):
    """All four stages in order, the candidate's own questions answered offline, "没有了" closing them, and the
    HTML report downloaded: labels not ids, wrapped references, every interviewer reply of the reverse stage."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    page.goto(app.url)
    expect(page.locator(BOT).first).to_contain_text("自我介绍", timeout=60_000)
    page.get_by_role("tab", name="会话").click()
    page.locator("#new-session").click()  # a fresh session: the module's other test may have used this one
    page.get_by_role("tab", name="面试").click()
    expect(page.locator("#status")).to_contain_text("面试", timeout=30_000)
    _send(page, SELF_INTRO)
    expect(page.locator(BOT).last).to_contain_text("KV Cache")
    for _ in range(30):  # skip through the technical and project stages
        if "第四阶段" in page.locator("#stage-panel .panel-now").inner_text():
            break
        _click(page, "skip")
    expect(page.locator("#stage-panel .panel-now")).to_contain_text("当前：第四阶段")
    _send(page, "面试结果什么时候出？")
    expect(page.locator(BOT).last).to_contain_text("还有其他问题吗")
    assert "模拟面试" in page.locator(BOT).nth(page.locator(BOT).count() - 2).inner_text()
    _send(page, "KsanaLLM 的 prefix cache 淘汰为什么不是 LRU？")
    expect(page.locator(BOT).nth(page.locator(BOT).count() - 2)).to_contain_text("根据笔记")
    _shot(page, "10-reverse-stage")
    _send(page, "没有了，谢谢。")
    expect(page.locator(BOT).last).to_contain_text("为什么")  # the motivation question: the stage closed
    _send(page, "因为推理成本决定了大模型能不能大规模落地，我喜欢在显存、带宽和调度之间做取舍。")
    report = page.locator("#report")
    expect(report).to_contain_text("面试报告", timeout=30_000)
    _shot(page, "11-whole-interview-report", full=True)
    with page.expect_download(timeout=30_000) as download:
        page.locator("#download-html").click()
    path = tmp_path / "report.html"
    download.value.save_as(path)
    html_report = path.read_text(encoding="utf-8")
    assert "这是模拟面试，我不知道真实招聘的流程" in html_report and "根据笔记" in html_report, "the reverse-stage replies are in the report"
    assert "seed_mock" not in html_report and "reverse_questions" not in html_report
    assert "overflow-wrap:anywhere" in html_report
    report_page = context.new_page()
    report_page.goto(path.as_uri())
    _no_horizontal_scroll(report_page, 1366)
    _shot(report_page, "12-html-report", full=True)

    # The progress tab: what was practised (the ledger recorded every graded turn), the mastery plot, today's review.
    page.get_by_role("tab", name="进度").click()
    expect(page.locator("#progress-summary")).to_contain_text("今天 20 分钟复习", timeout=30_000)
    expect(page.locator("#progress-summary")).to_contain_text("最常漏答的要点")
    expect(page.locator("#mastery-points")).to_be_visible()  # one day of practice: points, not an empty line
    expect(page.locator("#mastery-plot")).to_be_hidden()
    page.wait_for_timeout(1500)  # the plot renders
    assert page.locator("#mastery-points canvas, #mastery-points svg").count() > 0
    _no_horizontal_scroll(page, 1366)
    _shot(page, "13-progress", full=True)
    context.close()


# Collects every interviewer bubble the page shows while a model is still writing it (the ▍ cursor).
WATCH_DRAFTS = """() => {
  window.__drafts = [];
  new MutationObserver(() => {
    for (const b of document.querySelectorAll('#chatbot [data-testid="bot"]')) {
      const t = b.innerText;
      if (t.includes('\u258d') && !window.__drafts.includes(t)) window.__drafts.push(t);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.mark.timeout(300)
def test_a_model_worded_question_streams_in_the_browser(browser, built_index, tmp_path):
    """With a model (the real ChatOpenAI in the app → a stub server here), the follow-up appears word by word."""
    from playwright.sync_api import expect

    from devtools.doubles.openai_server import StubOpenAIServer
    from tests.test_prefetch import ANSWER, WORDED, Recorder

    words = WORDED.split("[")[0]
    with StubOpenAIServer(chunk_chars=3, chunk_delay_s=0.05, responder=Recorder(set(), call_s=0.2)) as stub, \
            _running_app(built_index, tmp_path / "data", INTERVIEWER_MODEL="stub-model", OPENAI_BASE_URL=stub.base_url,
                         OPENAI_API_KEY="sk-browser-SECRET") as app:
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page.goto(app.url)
        expect(page.locator(BOT).first).to_contain_text("自我介绍", timeout=60_000)
        page.evaluate(WATCH_DRAFTS)
        for answer in (SELF_INTRO, ANSWER):  # the first answer the model finds gaps in gets a worded follow-up
            _send(page, answer)
            expect(page.locator("#answer-box textarea")).to_have_value("", timeout=30_000)  # the turn is saved
            if words in page.locator(BOT).last.inner_text():
                break
        final = page.locator(BOT).last.inner_text()
        drafts = page.evaluate("window.__drafts")
        assert words in final and "\u258d" not in final, final
        assert any(words[:6] in d and words not in d for d in drafts), f"no partial draft was shown: {drafts}"
        assert stub.requests, "the app called the model"
        _shot(page, "09-streamed-question")
        page.close()
