"""Start the browser app: settings (environment, ``.env``, the settings tab's saved choices, flags) → services
(index, retriever, model, interviewer) → UI → serve on 127.0.0.1. ``app.py`` and ``interviewer serve`` call it."""

from __future__ import annotations

import argparse
import sys

from interviewer.config import Settings
from interviewer.services import build_services, quiet_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interviewer serve", description="AI mock interviewer in the browser (offline by default)")
    parser.add_argument("--port", type=int, help="default 7860 (INTERVIEWER_PORT)")
    parser.add_argument("--host", help="default 127.0.0.1; another interface needs INTERVIEWER_PASSWORD")
    parser.add_argument("--notes", action="append", help="a folder of your own notes (repeatable)")
    args = parser.parse_args(argv)
    quiet_environment()
    settings, warning = Settings.from_env().with_saved()  # the settings tab's last choices, if any
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    changes = {k: v for k, v in {"port": args.port, "host": args.host}.items() if v}
    if args.notes:
        changes["notes_dirs"] = settings.notes_dirs + tuple(args.notes)
    try:
        settings = settings.with_(**changes) if changes else settings
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(done: int, total: int, source: str) -> None:
        print(f"\r构建笔记索引 {done}/{total} {source[:40]}", end="", file=sys.stderr, flush=True)

    services = build_services(settings, progress)
    from interviewer.facade import InterviewApp
    from interviewer.ui.layout import launch

    launch(InterviewApp(services))
    return 0
