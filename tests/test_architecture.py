"""The rooms keep their doors: who may import whom (docs/ARCHITECTURE.md), read from the
source with ast, lazy imports inside functions included, type-only imports excluded."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "mnistgan"


def room(path: Path) -> str:
    """'models' for models/dcgan.py, 'training' for training.py, ..."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _type_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path) -> set[str]:
    """The package's rooms that a module imports at run time."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_only(node)
            for n in ast.walk(node) if n is not node}
    here = path.relative_to(PKG).parts[:-1]  # the module's package below mnistgan
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
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
    "training": {"runs", "cli", "metrics", "images", "files"},
    "images": ROOMS - {"images"},
    "errors": ROOMS - {"errors"},
    "files": ROOMS - {"files", "errors"},
    "runtime": ROOMS - {"runtime", "errors"},
    "config": ROOMS - {"config", "errors", "registry"},
    "registry": ROOMS - {"registry", "errors"},
    "stats": ROOMS - {"stats", "errors"},
    "distributed": ROOMS - {"distributed", "errors"},
    "imagefolder": ROOMS - {"imagefolder", "errors", "files"},
    "augment": ROOMS - {"augment", "registry", "errors"},
    "graphs": ROOMS - {"graphs", "errors"},
}
for _room in ROOMS - {"cli", "web"}:  # the web page is started by the CLI alone
    FORBIDDEN[_room] = FORBIDDEN.get(_room, set()) | {"web"}
# data imports only config, errors, files and imagefolder (files: the cache folder; it imports nothing
# of the package but errors, so data stays below every room that knows about models).
ALLOWED = {"data": {"config", "errors", "files", "imagefolder"}}


def test_the_graph_was_read():
    assert {"training", "objectives", "generation", "callbacks", "runs", "files", "runtime"} <= ROOMS
    assert "objectives" in GRAPH["training"] and "training" in GRAPH["runs"]


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
