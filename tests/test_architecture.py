"""The rooms keep their doors: who may import whom (docs/ARCHITECTURE.md), read from the
source with ast, lazy imports inside functions and type-only imports (TYPE_CHECKING)
included; callbacks see the Trainer only through their view; no function is much longer
than a screen."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "mnistgan"


def room(path: Path) -> str:
    """'models' for models/dcgan.py, 'training' for training.py, ..."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports_of(path: Path) -> set[str]:
    """The package's rooms that a module imports: at the top, inside functions, or for type
    hints only (a cycle through type hints is a cycle in the design all the same)."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(PKG).parts[:-1]  # the module's package below mnistgan
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(here[:len(here) - (node.level - 1)]) if node.level > 1 else list(here)
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts] if node.module else [parts + [a.name] for a in node.names]
            elif node.module and node.module.split(".")[0] == "mnistgan":
                names = [node.module.split(".")[1:]]
            else:
                continue
            for parts in names:
                if parts:
                    found.add(parts[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("mnistgan."):
                    found.add(a.name.split(".")[1])
    return found - {room(path)}


MODULES = sorted(p for p in PKG.rglob("*.py"))
ROOMS = {room(p) for p in MODULES} - {"__init__", "__main__"}
GRAPH: dict[str, set[str]] = {}
for p in MODULES:
    GRAPH.setdefault(room(p), set()).update(imports_of(p))

# room -> rooms it must never import (docs/ARCHITECTURE.md, "Who may import whom")
FORBIDDEN = {
    "models": {"training", "data", "cli", "runs", "callbacks", "objectives", "metrics", "generation"},
    "objectives": {"data", "training", "runs", "callbacks", "cli", "metrics"},
    "metrics": {"training", "runs", "callbacks", "cli", "generation", "objectives"},
    "generation": {"training", "runs", "callbacks", "cli", "objectives", "data", "metrics"},
    "training": {"runs", "cli", "metrics", "images", "files", "rundir"},
    "steps": {"training", "runs", "cli", "callbacks", "metrics", "data", "files", "images", "checkpoint"},
    "callbacks": {"training", "runs", "cli", "steps", "api", "evaluation"},
    "rundir": ROOMS - {"rundir", "files", "errors"},
    "images": ROOMS - {"images"},
    "errors": ROOMS - {"errors"},
    "files": ROOMS - {"files", "errors"},
    "runtime": ROOMS - {"runtime", "errors", "threads", "numbers"},
    "threads": ROOMS - {"threads", "errors", "numbers"},
    "numbers": ROOMS - {"numbers", "errors"},
    "config": ROOMS - {"config", "errors", "registry", "numbers"},
    "registry": ROOMS - {"registry", "errors"},
    "stats": ROOMS - {"stats", "errors"},
    "distributed": ROOMS - {"distributed", "errors"},
    "imagefolder": ROOMS - {"imagefolder", "errors", "files", "threads", "numbers", "registry"},
    "augment": ROOMS - {"augment", "registry", "errors"},
    "graphs": ROOMS - {"graphs", "errors"},
}
for _room in ROOMS - {"cli", "web"}:  # the web page is started by the CLI alone
    FORBIDDEN[_room] = FORBIDDEN.get(_room, set()) | {"web"}
# data imports only config, errors, files and imagefolder (files: the cache folder; it imports nothing
# of the package but errors, so data stays below every room that knows about models).
ALLOWED = {"data": {"config", "errors", "files", "imagefolder"}}


def test_the_graph_was_read():
    assert {"training", "objectives", "generation", "callbacks", "runs", "files", "runtime", "steps"} <= ROOMS
    assert "objectives" in GRAPH["training"] and "training" in GRAPH["runs"]
    assert "callbacks" in GRAPH["training"]  # a type-only import (Callback) is read too


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_no_forbidden_imports(name):
    assert not GRAPH.get(name, set()) & FORBIDDEN[name], f"{name} imports {GRAPH[name] & FORBIDDEN[name]}"


def test_data_imports_only_config_errors_and_files():
    assert GRAPH["data"] <= ALLOWED["data"], GRAPH["data"]


def test_only_cli_imports_cli():
    assert [r for r, deps in GRAPH.items() if "cli" in deps and r not in ("cli", "__main__")] == []


def test_no_import_cycles():
    seen, stack = set(), []

    def visit(r):
        assert r not in stack, f"import cycle: {' -> '.join(stack[stack.index(r):] + [r])}"
        if r in seen:
            return
        stack.append(r)
        for d in GRAPH.get(r, ()):
            if d in ROOMS:
                visit(d)
        stack.pop()
        seen.add(r)

    for r in sorted(ROOMS):
        visit(r)


def test_nothing_below_the_cli_writes_to_the_terminal_except_callbacks():
    """print, sys.stdout/stderr and tqdm appear only in cli.py and callbacks.py."""
    offenders = []
    for p in MODULES:
        if room(p) in ("cli", "callbacks", "__main__"):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{p.name}:{node.lineno} print")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys" \
                    and node.attr in ("stdout", "stderr"):
                offenders.append(f"{p.name}:{node.lineno} sys.{node.attr}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                if any(m and m.split(".")[0] == "tqdm" for m in mods):
                    offenders.append(f"{p.name}:{node.lineno} tqdm")
    assert offenders == []


def test_callbacks_see_the_trainer_only_through_their_view():
    """Every attribute a callback reads of the trainer it is handed is one TrainerView names."""
    from mnistgan.callbacks.base import TrainerView

    allowed = {n for n in vars(TrainerView) if not n.startswith("_")} | set(TrainerView.__annotations__)
    used = set()
    for p in (PKG / "callbacks").glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "trainer":
                used.add(node.attr)
    assert used and used <= allowed, used - allowed


# Functions allowed past a screen, and why.
LONG_OK = {
    "cli.py:build_parser": "the whole command line, declared flag by flag: one list, no logic",
}
SCREEN = 80  # lines


def test_no_function_is_much_longer_than_a_screen():
    long = []
    for p in MODULES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > SCREEN and f"{p.name}:{node.name}" not in LONG_OK:
                    long.append(f"{p.relative_to(PKG)}:{node.name} ({lines} lines)")
    assert long == []
