"""The house keeps its shape: packages import only from their own layer or below (function-level imports
included), there is no import cycle, and no product module imports the dev tools or the tests."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "interviewer"
LAYERS = [  # low → high, in the order data flows
    {"bands", "messages", "resources", "config", "models", "tokens", "prompts", "quantities", "database"},
    {"knowledge"},
    {"search"},
    {"grading"},
    {"report"},
    {"practice"},
    {"engine"},
    {"services"},
    {"facade", "terminal"},
    {"ui"},
    {"launcher", "cli", "__main__", "__init__"},
]
MAX_LINES = 400


def layer_of(module: str) -> int:
    top = module.split(".")[1] if module.startswith("interviewer.") else module
    return next(i for i, names in enumerate(LAYERS) if top in names)


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out[name] = path
    return out


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_every_module_has_a_layer():
    for name in modules():
        if name != "interviewer":
            layer_of(name)


def test_no_import_reaches_up_a_layer():
    mods = modules()
    upward = []
    for name, path in mods.items():
        if name == "interviewer":
            continue
        for target in imports(path):
            if target in mods and target != "interviewer" and layer_of(target) > layer_of(name):
                upward.append(f"{name} → {target}")
    assert not upward, upward


def test_no_import_cycle():
    mods = modules()
    graph = {name: {t for t in imports(path) if t in mods and t != name and t != "interviewer"} for name, path in mods.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_product_never_imports_dev_tools_or_tests():
    cli = PACKAGE / "cli.py"  # `interviewer eval/bench` load devtools by name, from a source checkout only
    for name, path in modules().items():
        bad = {t for t in imports(path) if t.split(".")[0] in ("devtools", "tests")}
        assert not bad or path == cli and not {t for t in bad if t.split(".")[0] == "tests"}, (name, bad)


def test_modules_stay_small_or_say_why():
    long = [(p.name, n) for p in PACKAGE.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
            and "lines on purpose" not in p.read_text(encoding="utf-8")[:2000]]
    assert not long, long
