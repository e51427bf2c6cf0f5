"""The ``interviewer`` command: index, search, questions, grade, interview, report, audit, eval, bench.

Each subcommand is a thin shell over the library; ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from interviewer.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes = {}
    if getattr(args, "notes", None):
        changes["notes_dirs"] = tuple(settings.notes_dirs) + tuple(Path(n).expanduser() for n in args.notes)
    if getattr(args, "lang", None):
        changes["lang"] = args.lang
    if getattr(args, "data_dir", None):
        changes["data_dir"] = Path(args.data_dir)
    return settings.with_(**changes) if changes else settings


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _progress_bar():
    from tqdm import tqdm

    bar = tqdm(total=0, unit="chunk", desc="embedding", file=sys.stderr)

    def progress(done: int, total: int, source: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(source[:30])
        bar.refresh()

    return bar, progress


def cmd_index(args) -> int:
    from interviewer.search.index import build_index
    from interviewer.services import quiet_environment

    quiet_environment()
    settings = _settings(args)
    bar, progress = _progress_bar()
    report = build_index(settings, progress)
    bar.close()
    for msg in report.skipped:
        print(f"skipped: {msg}", file=sys.stderr)
    print(f"{report.total} chunks: {report.added} added, {report.updated} updated, {report.removed} removed, "
          f"{report.unchanged} unchanged in {report.seconds:.2f} s → {settings.chroma_host or settings.index_dir}")
    return 0


def cmd_search(args) -> int:
    from interviewer.search.retrieval import Retriever
    from interviewer.services import ensure_index, quiet_environment

    quiet_environment()
    settings = _settings(args)
    ensure_index(settings)
    hits = Retriever(settings).search(args.query, k=args.k, topic=args.topic)
    if args.json:
        _print_json([h.to_dict() for h in hits])
    else:
        for i, h in enumerate(hits, 1):
            print(f"{i}. [{h.score:.4f}] {h.address}\n   {h.text[:160].replace(chr(10), ' ')}")
    return 0


def cmd_questions(args) -> int:
    from interviewer.grading.contract import target_ids
    from interviewer.knowledge.bank import default_bank

    bank = default_bank()
    lang = args.lang or "zh"
    rows = [{"id": q.id, "stage": q.stage, "topic": q.topic, "difficulty": q.difficulty, "question": q.question.get(lang),
             "follow_ups": [{"id": tid, "question": text} for tid, kind, text in target_ids(q) if kind == "follow_up"],
             "probes": [{"id": tid, "question": text} for tid, kind, text in target_ids(q) if kind == "probe"]}
            for q in bank.values() if (not args.topic or q.topic == args.topic) and (not args.stage or q.stage == args.stage)]
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print(f"{r['id']:<32} {r['stage']:<9} {r['topic']:<20} d{r['difficulty']}  {r['question']}")
            for f in r["follow_ups"]:
                print(f"  {f['id']:<30} {f['question']}")
        print(f"{len(rows)} questions, {sum(len(r['follow_ups']) for r in rows)} follow-ups "
              f"(every key point's probe is listed with --json)")
    return 0


def cmd_grade(args) -> int:
    from interviewer.grading.contract import Target
    from interviewer.grading.registry import grade_answer
    from interviewer.knowledge.bank import default_bank
    from interviewer.models import build_chat_model

    bank = default_bank()
    settings = _settings(args)
    try:
        target = Target.of_ref(bank, args.question_id, settings.lang)
    except (KeyError, ValueError):
        print(f"error: no question, follow-up or probe with id {args.question_id!r} (see `interviewer questions --json`)",
              file=sys.stderr)
        return 2
    if args.answer_file:
        try:
            answer = Path(args.answer_file).read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            print(f"error: cannot read {args.answer_file}: {exc.strerror}", file=sys.stderr)
            return 2
    else:
        answer = args.answer
    grade = grade_answer(target, answer, build_chat_model(settings))
    if args.json:
        _print_json(grade.contract())
    else:
        print(f"{grade.band} · {grade.score}/100 ({grade.grader}, confidence {grade.confidence:.2f})")
        for p in grade.points:
            print(f"  [{p.covered:.2f}] {p.point}" + (f"  ← 「{p.evidence[:80]}」" if p.evidence else ""))
        for m in grade.misconceptions:
            print(f"  ⚠ {m.claim} → {m.correction} ({m.source})")
        print(grade.feedback)
    return 0


def cmd_interview(args) -> int:
    from interviewer.services import build_services
    from interviewer.terminal import run_interactive, run_scripted

    settings = _settings(args)
    services = build_services(settings)
    if args.answers:
        return run_scripted(services.interviewer, Path(args.answers), Path(args.export) if args.export else None,
                            plan=args.plan, lang=args.lang, resume=args.resume,
                            minutes=args.minutes)
    return run_interactive(services.interviewer, plan=args.plan, lang=args.lang, minutes=args.minutes)


def cmd_report(args) -> int:
    from interviewer.report.exporters import render
    from interviewer.report.transcript import TranscriptError, load_transcript

    try:
        text = render(load_transcript(Path(args.file)), args.format)
    except TranscriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def cmd_audit(args) -> int:
    from interviewer.knowledge.audit import audit_paths, format_findings

    findings, errors = audit_paths([Path(p) for p in args.paths])
    for e in errors:
        print(f"skipped: {e}", file=sys.stderr)
    if args.json:
        _print_json([f.to_dict() for f in findings if args.all or f.verdict != "confirmed"])
    else:
        print(format_findings(findings, only_problems=not args.all) or "no checked claims found")
        problems = sum(1 for f in findings if f.verdict != "confirmed")
        print(f"\n{problems} claims to fix, {len(findings) - problems} confirmed")
    return 0


def _devtools(module: str, command: str):
    """A module of ``devtools`` (eval, bench): development tools that live in the source checkout, not the wheel."""
    import importlib

    from interviewer.resources import CHECKOUT

    if (CHECKOUT / "devtools").is_dir() and str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    try:
        return importlib.import_module(f"devtools.{module}")
    except ImportError as exc:
        raise SystemExit(f"error: `interviewer {command}` is a development tool: run it from a source checkout ({exc})") from exc


def cmd_eval(args) -> int:
    return _devtools("evaluation", "eval").run_eval(_settings(args), which=args.which, as_json=args.json, with_model=args.with_model,
                                                      grader=args.grader)


def cmd_bench(args) -> int:
    return _devtools("bench", "bench").run_bench(_settings(args), as_json=args.json, quick=args.quick)


def cmd_progress(args) -> int:
    from datetime import UTC, datetime

    from interviewer.knowledge.bank import default_bank
    from interviewer.practice.ledger import Ledger
    from interviewer.practice.review import progress, review_questions

    ledger = Ledger(_settings(args).ledger_path)
    now = datetime.now(UTC)
    data = progress(ledger, default_bank(), now) | {"review_20_min": review_questions(ledger, default_bank(), 20, now)}
    if args.json:
        _print_json(data)
        return 0
    print(f"练习 {data['sessions']} 场、{data['answers']} 题、{data['minutes']} 分钟；连续 {data['streak_days']} 天")
    print(f"24 小时内到期 {len(data['due_today'])} 项，7 天内 {len(data['due_this_week'])} 项")
    for m in data["most_missed"][:5]:
        print(f"  漏答 {m['misses']} 次：{m['point']}  → {m['note']}")
    print("今天 20 分钟的复习：" + "；".join(f"{q}（{why}）" for q, why in data["review_20_min"]) if data["review_20_min"] else "还没有需要复习的题。")
    return 0


def cmd_ledger(args) -> int:
    from interviewer.practice.ledger import Ledger
    from interviewer.report.transcript import TranscriptError

    ledger = Ledger(_settings(args).ledger_path)
    if args.action == "import":
        try:
            added = sum(ledger.add_transcript(Path(f)) for f in args.files)
        except TranscriptError as exc:
            print(f"error: {exc} (nothing was changed)", file=sys.stderr)
            return 2
        print(f"added {added} answered questions")
    elif args.action == "export":
        text = json.dumps(ledger.export(), ensure_ascii=False, indent=1)
        Path(args.out).write_text(text, encoding="utf-8") if args.out else print(text)
    elif args.action == "forget":
        if not args.yes:
            print("error: this deletes your whole practice history; add --yes", file=sys.stderr)
            return 2
        print(f"forgot {ledger.forget()} answered questions")
    return 0


def cmd_serve(args) -> int:
    from interviewer.launcher import main as serve

    return serve(args.rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="interviewer", description="AI mock interviewer for LLM inference optimization roles")
    p.add_argument("--data-dir", help="where the index, sessions and exports live (default: user data dir)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("progress", help="what you practised, what is due, the points you miss most")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_progress)

    s = sub.add_parser("ledger", help="your practice history: import an exported transcript, export it, or forget it")
    s.add_argument("action", choices=["import", "export", "forget"])
    s.add_argument("files", nargs="*", help="import: exported JSON transcripts")
    s.add_argument("--out", help="export: write to this file")
    s.add_argument("--yes", action="store_true", help="forget: really delete everything")
    s.set_defaults(func=cmd_ledger)

    s = sub.add_parser("serve", help="start the browser app (same as python app.py; --port, --host, --notes)", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("index", help="build or update the notes index (only changed chunks are embedded)")
    s.add_argument("--notes", action="append", help="a folder of your own Markdown/text notes (repeatable)")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("search", help="hybrid search over the notes")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--topic")
    s.add_argument("--notes", action="append")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("questions", help="list the question bank")
    s.add_argument("--topic")
    s.add_argument("--stage")
    s.add_argument("--lang", choices=["zh", "en"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_questions)

    s = sub.add_parser("grade", help="grade one answer against a question's (or a follow-up's) rubric")
    s.add_argument("--question-id", required=True, help="a question id, or a follow-up/probe id such as kv_cache/f1")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--answer")
    g.add_argument("--answer-file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_grade)

    s = sub.add_parser("interview", help="run an interview in the terminal, or scripted from a JSONL file")
    s.add_argument("--answers", help='JSONL: one {"say": "...", "seconds": N} per line')
    s.add_argument("--export", help="write the transcript (.json, .md or .html)")
    s.add_argument("--lang", choices=["zh", "en"])
    s.add_argument("--plan", default=None, help="interview plan id (seed_mock, drill, numbers) or review (due items and weak topics)")
    s.add_argument("--minutes", type=int, default=20, help="with --plan review: the time budget (10/20/40)")
    s.add_argument("--resume", help="session id to resume (scripted mode skips lines already consumed)")
    s.add_argument("--notes", action="append")
    s.set_defaults(func=cmd_interview)

    s = sub.add_parser("report", help="re-render an exported JSON transcript")
    s.add_argument("file")
    s.add_argument("--format", default="md", help="an export format: json, md, html, anki (every one in report/exporters)")
    s.add_argument("--out")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("audit", help="check notes for wrong or unsourced claims")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="also list confirmed claims")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("eval", help="measure retrieval, grading and the interviewer against eval/ and eval/targets.toml")
    s.add_argument("which", nargs="?", choices=["all", "retrieval", "grading", "interviews"], default="all")
    s.add_argument("--json", action="store_true")
    s.add_argument("--with-model", action="store_true", help="also evaluate the configured LLM grader")
    s.add_argument("--grader", default="offline", help="the offline grader to measure: offline (default) or meaning (experimental)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("bench", help="benchmarks with p50/p95 against the targets")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quick", action="store_true", help="a small smoke run (CI)")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # settings and knowledge errors: a clear message, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
