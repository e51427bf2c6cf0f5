"""The page: tabs, components and the wiring of events to handlers (by output name), and serving it.

Named API endpoints (for ``gradio_client``): ``new_session``, ``send``, ``harder_ksana``, ``harder``, ``hint``,
``skip``, ``end``, ``rate``, ``export``, ``list_sessions``, ``resume``, ``apply_settings``, ``reindex``,
``audit``. The session id is an explicit input (``sid``) of the interview endpoints; their outputs are
:data:`~interviewer.ui.handlers.VIEW` in that order. The session id lives in the browser
(``gr.BrowserState``, encrypted with a secret kept in the data directory so it survives restarts).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from interviewer.config import is_loopback
from interviewer.engine.commands import RATINGS
from interviewer.facade import InterviewApp
from interviewer.report.exporters import exporters
from interviewer.ui.gradio_import import import_gradio
from interviewer.ui.handlers import MODE_OFFLINE, MODE_OPENAI, VIEW, Handlers, browser_secret, download_name
from interviewer.ui.style import CSS, JS, theme

gr = import_gradio()

AUTH_USER = "interviewer"
STORAGE_KEY = "llm-interviewer-session"
LANG_CHOICES = [("中文", "zh"), ("English", "en")]
FEEDBACK_CHOICES = [("每题答完就看评分", "each"), ("结束时统一看评分", "end")]
ANSWER_HINT = "在这里回答（Ctrl+Enter 发送）。也可以输入命令：/hint /skip /harder /harder ksana /rate 基本 /end /help"

COMMAND_BUTTONS = (("更难的追问 · KsanaLLM", "harder-ksana", "/harder ksana", "harder_ksana"),
                   ("更难", "harder", "/harder", "harder"),
                   ("提示", "hint", "/hint", "hint"),
                   ("跳过", "skip", "/skip", "skip"),
                   ("结束面试", "end", "/end", "end"))


def by_name(components: dict[str, Any], handler: Callable) -> Callable:
    """Wrap a handler that returns {output name: value} (or yields such dicts) for Gradio, which wants
    {component: value}; names not returned are left unchanged."""
    def convert(out):
        return {components[k]: v for k, v in out.items()} if isinstance(out, dict) else out

    if inspect.isgeneratorfunction(handler):
        def stream(*args):
            for out in handler(*args):
                yield convert(out)
        fn = stream
    else:
        def fn(*args):
            return convert(handler(*args))
    fn.__name__ = getattr(handler, "__name__", "handler")
    return fn


def build_ui(app: InterviewApp) -> gr.Blocks:
    h = Handlers(app)
    settings = app.settings
    with gr.Blocks(title="AI 模拟面试 · 大模型推理优化", analytics_enabled=False) as demo:
        secret = browser_secret(settings.data_dir)
        browser_sid = gr.BrowserState("", storage_key=STORAGE_KEY, secret=secret)
        draft = gr.BrowserState("", storage_key=STORAGE_KEY + "-draft", secret=secret)  # typed, not yet sent
        gr.Markdown("## AI 模拟面试 · 大模型推理优化", elem_id="app-title")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("面试", id="interview", elem_id="tab-interview"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        chat = gr.Chatbot(elem_id="chatbot", show_label=False, height="50vh", min_height=260,
                                          latex_delimiters=[], allow_tags=False, sanitize_html=True, buttons=["copy_all"],
                                          feedback_options=None, group_consecutive_messages=False,
                                          placeholder="正在准备面试……")
                        answer = gr.Textbox(elem_id="answer-box", show_label=False, lines=3, max_lines=12, placeholder=ANSWER_HINT)
                        with gr.Row(elem_id="command-row"):
                            send_btn = gr.Button("发送", variant="primary", elem_id="send", size="md", min_width=64)
                            buttons = {api: gr.Button(label, elem_id=eid, size="md", min_width=150 if api == "harder_ksana" else 64)
                                       for label, eid, _cmd, api in COMMAND_BUTTONS}
                        status = gr.HTML("", elem_id="status")
                    with gr.Column(scale=1, min_width=260):
                        panel = gr.HTML("", elem_id="stage-panel")
                        rating = gr.Radio(list(RATINGS), label="给上一题自评", elem_id="self-rating", value=None)
                        export_btn = gr.Button("查看当前报告 / 导出", elem_id="export", size="md")
                with gr.Column(visible=False, elem_id="report-box") as report_box:
                    report = gr.HTML("", elem_id="report")
                    with gr.Row():
                        downloads = {download_name(e.name): gr.DownloadButton(e.label, elem_id=f"download-{e.name}", size="md")
                                     for e in exporters()}
                        new_end = gr.Button("开始新面试", elem_id="new-session-end", variant="primary", size="md")
            with gr.Tab("会话", id="sessions", elem_id="tab-sessions") as sessions_tab:
                sid_box = gr.Textbox(label="当前面试编号", elem_id="session-id", interactive=False)
                sessions = gr.Dropdown(label="过去的面试（最近的在前）", choices=[], elem_id="sessions", interactive=True)
                plan = gr.Dropdown(app.plans(), value=settings.plan, label="新面试用的计划", elem_id="plan", interactive=True)
                with gr.Row():
                    refresh_btn = gr.Button("刷新列表", elem_id="sessions-refresh")
                    resume_btn = gr.Button("继续这场面试", elem_id="resume", variant="primary")
                    new_btn = gr.Button("开始新面试", elem_id="new-session")
            with gr.Tab("设置", id="settings", elem_id="tab-settings"):
                mode = gr.Radio([MODE_OFFLINE, MODE_OPENAI], label="模型", elem_id="model-mode")
                with gr.Row():
                    model_name = gr.Textbox(label="模型名称", placeholder="deepseek-chat / qwen-plus / gpt-4o-mini", elem_id="model-name")
                    base_url = gr.Textbox(label="接口地址（Base URL）", placeholder="https://api.deepseek.com/v1 或 http://127.0.0.1:8000/v1",
                                          elem_id="base-url")
                    api_key = gr.Textbox(label="API key", type="password", elem_id="api-key")
                with gr.Row():
                    lang = gr.Radio(LANG_CHOICES, label="面试语言（新面试生效）", elem_id="lang")
                    feedback = gr.Radio(FEEDBACK_CHOICES, label="评分什么时候显示", elem_id="feedback")
                apply_btn = gr.Button("应用设置", variant="primary", elem_id="apply-settings")
                settings_status = gr.HTML("", elem_id="settings-status")
                notes = gr.Textbox(label="我的笔记文件夹（每行一个；.md / .txt）", lines=2, elem_id="notes-dirs")
                reindex_btn = gr.Button("重新建立笔记索引", elem_id="reindex")
                index_status = gr.HTML("", elem_id="index-status")
            with gr.Tab("进度", id="progress", elem_id="tab-progress") as progress_tab:
                progress_head = gr.HTML("", elem_id="progress-summary")
                with gr.Row():  # each chart twice: a line from the second day on, points while there is one day
                    mastery_plot = gr.LinePlot(x="日期", y="得分", color="话题", title="各话题得分随时间", elem_id="mastery-plot",
                                               y_lim=[0, 100], height=320)
                    mastery_points = gr.ScatterPlot(x="日期", y="得分", color="话题", title="各话题得分随时间",
                                                    elem_id="mastery-points", y_lim=[0, 100], height=320, visible=False)
                    agree_plot = gr.LinePlot(x="日期", y="自评与评分一致率", title="自评与评分一致率", elem_id="agreement-plot",
                                             y_lim=[0, 1], height=320)
                    agree_points = gr.ScatterPlot(x="日期", y="自评与评分一致率", title="自评与评分一致率",
                                                  elem_id="agreement-points", y_lim=[0, 1], height=320, visible=False)
            with gr.Tab("笔记核查", id="audit", elem_id="tab-audit"):
                gr.Markdown("检查你自己的笔记里有没有事实登记表中已知错误、有误导或找不到出处的说法。")
                audit_path = gr.Textbox(label="笔记文件或文件夹路径（每行一个）", elem_id="audit-path")
                audit_btn = gr.Button("开始核查", variant="primary", elem_id="audit-run")
                audit_status = gr.HTML("", elem_id="audit-status")
                audit_table = gr.Dataframe(headers=["文件", "行", "结论", "说法", "正确说法", "出处"], elem_id="audit-table",
                                           interactive=False, wrap=True, column_count=6)

        components = {"sid": sid_box, "browser_sid": browser_sid, "chat": chat, "panel": panel, "report_box": report_box,
                      "report": report, **downloads, "status": status, "answer": answer, "rating": rating}
        view = [components[name] for name in VIEW]
        named = lambda handler: by_name(components, handler)  # noqa: E731
        settings_fields = [mode, model_name, base_url, api_key, lang, feedback, notes]

        demo.load(named(h.restore), [browser_sid, draft], [*view, answer], api_name="restore", api_visibility="private")
        demo.load(h.settings_values, None, settings_fields, api_name="settings_values", api_visibility="private")
        demo.load(h.list_sessions, None, sessions, api_name="list_sessions_on_load", api_visibility="private")

        chat.clear(h.chat_only, [sid_box], [chat], api_visibility="private")  # the toolbar's clear: show the session again
        # The draft mirrors the answer box in the browser (typing, clearing after a send, restoring on load);
        # an empty box is stored as " " because BrowserState does not store an empty value.
        answer.change(None, [answer], [draft], js="(text) => text || ' '", queue=False, show_progress="hidden",
                      api_visibility="private", trigger_mode="always_last")
        send_btn.click(h.echo, [chat, answer], [chat], queue=False, show_progress="hidden", api_visibility="private").then(
            named(h.send), [sid_box, answer], [*view, answer], api_name="send")
        for _label, _eid, cmd, api in COMMAND_BUTTONS:
            buttons[api].click(named(h.command(cmd)), [sid_box], view, api_name=api)
        rating.input(named(h.rate), [sid_box, rating], [*view, rating], api_name="rate")
        export_btn.click(named(h.export), [sid_box], view, api_name="export")
        refresh_btn.click(h.list_sessions, None, sessions, api_name="list_sessions")
        sessions_tab.select(h.list_sessions, None, sessions, api_name="sessions_on_tab", api_visibility="private")
        new_btn.click(named(h.new_session), [sid_box, plan], view, api_name="new_session").then(
            h.list_sessions, None, sessions, api_name="sessions_after_new", api_visibility="private")
        new_end.click(named(h.new_session), [sid_box, plan], view, api_name="new_session_at_end", api_visibility="private").then(
            h.list_sessions, None, sessions, api_name="sessions_after_new_at_end", api_visibility="private")
        resume_btn.click(named(h.resume), [sessions], view, api_name="resume")
        apply_btn.click(h.apply_settings, [mode, model_name, base_url, api_key, lang, feedback], [settings_status, api_key],
                        api_name="apply_settings")
        reindex_btn.click(h.reindex, [notes], [index_status], api_name="reindex")
        audit_btn.click(h.audit, [audit_path], [audit_table, audit_status], api_name="audit")
        progress_tab.select(h.progress, None, [progress_head, mastery_plot, mastery_points, agree_plot, agree_points],
                            api_name="progress")
    demo.handlers = h  # for tests
    return demo


def launch(app: InterviewApp, **overrides):
    """Serve the UI on settings.host:port (loopback by default; a password is required otherwise)."""
    settings = app.settings
    demo = build_ui(app)
    demo.queue(default_concurrency_limit=4)
    options: dict[str, Any] = dict(
        server_name=settings.host, server_port=settings.port, share=False, ssr_mode=False, show_error=False,
        auth=None if is_loopback(settings.host) else (AUTH_USER, settings.password),
        auth_message="请输入用户名 interviewer 和 INTERVIEWER_PASSWORD 设置的密码。",
        allowed_paths=[str(settings.exports_dir)], theme=theme(), css=CSS, js=JS, footer_links=["api", "gradio"],
    )
    options.update(overrides)
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    block = not options.pop("prevent_thread_lock", False)
    demo.launch(**options, prevent_thread_lock=True)
    # Load the embedder and BM25 once the server is up, not on the first answer (nor before the first page).
    # Not a daemon: a daemon thread still inside native code (the embedder) when the interpreter exits can crash it.
    threading.Thread(target=app.warm, name="warm-up").start()
    if block:
        demo.block_thread()
    return demo
