"""Event handlers of the browser UI, over the :class:`~interviewer.facade.InterviewApp` facade.

Nothing here grades, retrieves or decides. Each handler returns its outputs by name (a dict; ``layout``
maps the names to components), and leaves out what it does not change: a failure changes only the status
line, so a typed answer is never lost. The whole chat is re-rendered from the session's checkpointed state,
so a page refresh or an app restart shows exactly what the engine has; only while a model is still writing
the next question (or an answer in the reverse stage) does ``send`` show it as a provisional bubble.
"""

from __future__ import annotations

import logging
import queue
import re
import secrets
import string
import threading
import time
from pathlib import Path
from typing import Any

from interviewer.engine.commands import RATINGS
from interviewer.facade import InterviewApp
from interviewer.report.exporters import exporters
from interviewer.ui.gradio_import import import_gradio
from interviewer.ui.render import chat_history, esc_bot, esc_candidate, finding_rows, progress_summary, report_html, stage_panel, status_html

gr = import_gradio()
log = logging.getLogger(__name__)

MODE_OFFLINE = "离线（不调用模型，按评分表评分）"
MODE_OPENAI = "OpenAI 兼容接口"
KEY_SET = "已设置（不显示）"
KEY_EMPTY = "sk-…（本机服务可留空）"


def download_name(exporter_name: str) -> str:
    """The output name of an exporter's download button."""
    return f"download_{exporter_name}"


VIEW = ("sid", "browser_sid", "chat", "panel", "report_box", "report", *(download_name(e.name) for e in exporters()), "status")
"""The outputs of every interview endpoint, in order (``layout`` binds each name to a component)."""

DRAFT_EVERY_S = 0.06  # at most this often a streamed question is re-sent to the browser


def newest_drafts(drafts: queue.Queue):
    """The texts put on ``drafts`` until ``None``, skipping any superseded while the browser was being updated."""
    while True:
        text = drafts.get()
        if text is None:
            return
        time.sleep(DRAFT_EVERY_S)  # let a few more pieces arrive
        while True:
            try:
                newer = drafts.get_nowait()
            except queue.Empty:
                break
            if newer is None:
                yield text
                return
            text = newer
        yield text


def browser_secret(data_dir: Path) -> str:
    """The key that encrypts the session id in the browser; kept on disk so an app restart can read it back."""
    path = data_dir / "ui-secret"
    try:
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 16:
            return value
    except OSError:
        pass
    value = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)
    return value


class Handlers:
    """Event handlers. Each returns a dict of output name → value (see :data:`VIEW`)."""

    def __init__(self, app: InterviewApp) -> None:
        self.app = app

    @property
    def settings(self):
        return self.app.settings

    # -- helpers

    def _plain(self, exc: BaseException) -> str:
        """An error in plain words, without secrets."""
        from interviewer.models import describe_model_error

        text = str(exc) or type(exc).__name__
        if type(exc).__module__.startswith("openai") or type(exc).__name__ == "ModelRequestsBlocked":
            text = describe_model_error(exc)
        for secret in self.settings.secrets():
            text = text.replace(secret, "***")
        return text[:300]

    @staticmethod
    def _fail(message: str) -> dict:
        """Only the status line changes (the typed answer stays in its box)."""
        gr.Warning(message)
        return {"status": status_html(message, "error")}

    def view(self, sid: str, status: str = "", show_report: bool = False) -> dict:
        v = self.app.view(sid)
        visible = bool(v.finished or show_report)
        out: dict[str, Any] = {"sid": sid, "browser_sid": sid, "chat": chat_history(v.state), "panel": stage_panel(v, time.time()),
                               "report_box": gr.update(visible=visible), "report": "", "status": status_html(status)}
        files = self.app.export(sid) if visible else {}
        if visible:
            out["report"] = report_html(self.app.transcript(sid))
        for e in exporters():
            out[download_name(e.name)] = files.get(e.name)
        return out

    # -- session

    def restore(self, stored: Any, draft: Any = "") -> dict:
        """Page load: resume the browser's session, or open one (never a second untouched one); put back
        an answer that was typed but not sent."""
        sid = stored if isinstance(stored, str) else ""
        box = {"answer": draft} if isinstance(draft, str) and draft.strip() else {}
        try:
            if sid and self.app.exists(sid):
                self.app.resume(sid)
                return {**self.view(sid, "已恢复上次的面试。"), **box}
            return {**self.view(self.app.start_or_reuse()), **box}
        except Exception as exc:  # noqa: BLE001 - shown to the user in plain words
            log.warning("restore failed: %s", self._plain(exc))
            return self._fail(f"无法打开面试：{self._plain(exc)}")

    @staticmethod
    def echo(history: list | None, text: str):
        """Show the candidate's message at once, before the interviewer has answered."""
        if not (text or "").strip():
            return gr.skip()
        return [*(history or []), {"role": "user", "content": esc_candidate(text)}]

    def new_session(self, sid: str = "", plan: str | None = None) -> dict:
        plan = plan or self.settings.plan
        try:
            if self.app.reusable(sid, plan):
                return self.view(sid, "当前面试还没有作答，直接从这里开始。")
            return self.view(self.app.start(plan), "已开始新的面试。")
        except Exception as exc:  # noqa: BLE001
            log.warning("start failed: %s", self._plain(exc))
            return self._fail(f"无法开始面试：{self._plain(exc)}")

    def resume(self, sid: str) -> dict:
        if not sid or not self.app.exists(sid):
            return self._fail("请先在列表里选一场面试。")
        try:
            self.app.resume(sid)
            return self.view(sid, f"已切换到面试 {sid[:8]}。")
        except Exception as exc:  # noqa: BLE001
            return self._fail(f"无法继续这场面试：{self._plain(exc)}")

    def chat_only(self, sid: str):
        return chat_history(self.app.view(sid).state) if sid and self.app.exists(sid) else gr.skip()

    def list_sessions(self):
        infos = self.app.sessions()
        return gr.update(choices=[(i.label(), i.id) for i in infos], value=infos[0].id if infos else None)

    # -- interview

    def _no_session(self, sid: str) -> dict | None:
        """The failure outputs when ``sid`` names no session, else None."""
        if not sid or not self.app.exists(sid):
            return self._fail("没有进行中的面试：请刷新页面或在「会话」页开始新面试。")
        return None

    def _send_failed(self, exc: BaseException) -> dict:
        log.warning("send failed: %s", self._plain(exc))
        return self._fail(f"这条消息没有处理成功：{self._plain(exc)}。输入框里的内容还在，可以稍后再发。")

    def _send(self, sid: str, text: str) -> dict | None:
        """Send text; None on success, else the failure outputs."""
        if missing := self._no_session(sid):
            return missing
        try:
            self.app.send(sid, text)
        except Exception as exc:  # noqa: BLE001
            return self._send_failed(exc)
        return None

    def send(self, sid: str, text: str):
        """Send an answer. With a model, the next question is shown as the model writes it (the turn runs in a
        thread that finishes even if the page goes away), then the whole view is rendered from the engine."""
        if not (text or "").strip():
            yield self._fail("请先输入回答（或用下面的按钮：提示、跳过、更难）。")
            return
        if missing := self._no_session(sid):
            yield missing
            return
        drafts: queue.Queue[str | None] = queue.Queue()
        outcome: dict[str, BaseException] = {}

        def turn() -> None:
            try:
                self.app.send(sid, text, on_text=drafts.put)
            except Exception as exc:  # noqa: BLE001 - reported below in plain words
                outcome["error"] = exc
            finally:
                drafts.put(None)

        threading.Thread(target=turn, name=f"turn-{sid[:8]}").start()  # not a daemon: a turn under way finishes on exit
        shown: list[dict] | None = None
        for draft in newest_drafts(drafts):
            if shown is None:  # the chat as checkpointed so far: the answer and, when shown each turn, its grade
                shown = chat_history(self.app.view(sid).state)
            yield {"chat": [*shown, {"role": "assistant", "content": esc_bot(draft) + ' <span class="typing">▍</span>'}]}
        yield self._send_failed(outcome["error"]) if "error" in outcome else {**self.view(sid), "answer": ""}

    def command(self, command: str):
        def run(sid: str) -> dict:
            return self._send(sid, command) or self.view(sid)

        run.__name__ = "command_" + re.sub(r"\W+", "_", command.strip("/"))
        return run

    def rate(self, sid: str, rating: str) -> dict:
        if rating not in RATINGS:
            return self._fail("请选择 流畅 / 基本 / 卡顿 / 不会。")
        return self._send(sid, f"/rate {rating}") or {**self.view(sid), "rating": None}

    def export(self, sid: str) -> dict:
        if not sid or not self.app.exists(sid):
            return self._fail("没有可以导出的面试。")
        try:
            names = " / ".join(e.label.removeprefix("下载 ") for e in exporters())
            return self.view(sid, f"报告已生成，可以下载 {names}。", show_report=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("export failed: %s", self._plain(exc))
            return self._fail(f"导出失败：{self._plain(exc)}")

    # -- settings

    def settings_values(self) -> list:
        s = self.settings
        return [MODE_OFFLINE if s.offline else MODE_OPENAI, "" if s.model == "offline" else s.model, s.base_url,
                gr.update(value="", placeholder=KEY_SET if s.api_key else KEY_EMPTY),
                s.lang, s.feedback, "\n".join(str(p) for p in s.notes_dirs)]

    def apply_settings(self, mode: str, model: str, base_url: str, api_key: str, lang: str, feedback: str) -> list:
        from interviewer.models import build_chat_model

        changes: dict[str, Any] = {"lang": "en" if lang == "en" else "zh", "feedback": "end" if feedback == "end" else "each"}
        if mode == MODE_OPENAI:
            if not (model or "").strip():
                return [status_html("请填写模型名称（例如 deepseek-chat、qwen-plus、gpt-4o-mini）。", "error"), gr.skip()]
            changes |= {"model": model.strip(), "base_url": (base_url or "").strip()}
            if (api_key or "").strip():
                changes["api_key"] = api_key.strip()
        else:
            changes["model"] = "offline"
        try:
            new = self.settings.with_(**changes)
            chat_model = build_chat_model(new)
        except Exception as exc:  # noqa: BLE001
            return [status_html(f"设置没有生效：{self._plain(exc)}", "error"), gr.update(value="")]
        if warning := self.app.apply_settings(new, chat_model):
            log.warning("%s", warning)
        where = "离线评分" if new.offline else f"{new.model} @ {new.base_url or '默认地址'}"
        if not new.offline and not new.api_key and not new.base_url:
            where += "（缺少 API key）"
        words = (f"已应用并保存：{where}；新面试的语言：{'中文' if new.lang == 'zh' else 'English'}；"
                 f"评分显示：{'每题之后' if new.feedback == 'each' else '结束时'}。")
        if new.api_key and not new.offline:
            words += "API key 只保存在内存里，重启后需要重新填写（或写进 .env 的 OPENAI_API_KEY）。"
        return [status_html(words), gr.update(value="", placeholder=KEY_SET if new.api_key else KEY_EMPTY)]

    def reindex(self, folders: str, progress=gr.Progress()) -> str:
        dirs = [Path(p.strip()).expanduser() for p in re.split(r"[\n;]", folders or "") if p.strip()]
        missing = [str(d) for d in dirs if not d.is_dir()]
        if missing:
            return status_html(f"找不到这些文件夹：{'、'.join(missing)}", "error")

        def tick(done: int, total: int, source: str) -> None:
            progress(done / total if total else 1.0, desc=f"嵌入笔记 {done}/{total} {source[:30]}")

        try:
            report = self.app.reindex(dirs, tick)
        except Exception as exc:  # noqa: BLE001
            log.warning("reindex failed: %s", self._plain(exc))
            return status_html(f"索引没有建成：{self._plain(exc)}", "error")
        words = (f"索引完成：共 {report.total} 段，新增 {report.added}，更新 {report.updated}，删除 {report.removed}，"
                 f"用时 {report.seconds:.1f} 秒。")
        if report.skipped:
            words += " 跳过：" + "；".join(report.skipped[:5])
        return status_html(words)

    # -- progress

    def progress(self) -> list:
        """The progress tab: summary, mastery per topic over time, self-rating vs grader agreement over time."""
        import pandas as pd

        data = self.app.progress()
        mastery = pd.DataFrame(data.get("mastery") or [], columns=["day", "topic", "score", "label"])
        agreement = pd.DataFrame(data.get("self_vs_grader") or [], columns=["day", "agree", "n"])
        mastery = mastery.rename(columns={"day": "日期", "score": "得分", "label": "话题"})
        agreement = agreement.rename(columns={"day": "日期", "agree": "自评与评分一致率"})
        return [progress_summary(data), *_line_or_points(mastery, "各话题得分随时间", "暂无评分：答完一题就有"),
                *_line_or_points(agreement, "自评与评分一致率", "暂无自评：答完后用 /rate 自评")]

    # -- audit

    def audit(self, paths: str) -> list:
        items = [Path(p.strip()).expanduser() for p in re.split(r"[\n;]", paths or "") if p.strip()]
        if not items:
            return [gr.skip(), status_html("请填写笔记文件或文件夹的路径。", "error")]
        try:
            findings, errors = self.app.audit(items)
        except Exception as exc:  # noqa: BLE001
            return [gr.skip(), status_html(f"核查失败：{self._plain(exc)}", "error")]
        problems = sum(1 for f in findings if f.verdict != "confirmed")
        words = f"找到 {len(findings)} 处已登记的说法，其中 {problems} 处需要改正或补出处。" if findings else \
            "没有找到事实登记表里的说法。"
        if errors:
            words += " 无法读取：" + "；".join(errors[:5])
        return [finding_rows(findings), status_html(words, "error" if errors and not findings else "info")]


def _line_or_points(frame: Any, title: str, empty: str) -> list:
    """A line needs two days: with one day of practice the same data shows as points (a line plot would be empty);
    with no data at all the chart's title says what will fill it."""
    one_day = frame["日期"].nunique() <= 1
    title = f"{title}（{empty}）" if frame.empty else title
    return [gr.update(value=frame, visible=not one_day, title=title), gr.update(value=frame, visible=one_day, title=title)]
