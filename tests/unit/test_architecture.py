"""The rooms keep their doors: who may import whom (docs/ARCHITECTURE.md), read from the
source with ast, lazy imports inside functions and type-only imports (TYPE_CHECKING)
included; callbacks see the Trainer only through their view; no function is much longer
than a screen."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "src" / "mnistgan"


# Packages whose modules are rooms of their own (store.files, training.steps, ...): the floors
# of the library; the other packages (models, metrics, callbacks, web) are one room each.
SPLIT = {"store", "system", "training", "data"}


def room_of(parts: list[str]) -> str:
    """The room a module path below mnistgan names: 'store.files' for store/files,
    'data' for data/__init__, 'models' for models/dcgan, 'runs' for runs."""
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if len(parts) >= 2 and parts[0] in SPLIT:
        return f"{parts[0]}.{parts[1]}"
    return parts[0] if parts else "__init__"


def is_module(parts: list[str]) -> bool:
    """Whether mnistgan.<parts> is a module or a package (not a name defined in one)."""
    return (PKG.joinpath(*parts).with_suffix(".py").is_file() or (PKG.joinpath(*parts) / "__init__.py").is_file()) \
        if parts else False


def room(path: Path) -> str:
    return room_of(list(path.relative_to(PKG).with_suffix("").parts))


def imports_of(path: Path) -> set[str]:
    """The package's rooms that a module imports: at the top, inside functions, or for type
    hints only (a cycle through type hints is a cycle in the design all the same)."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PKG).with_suffix("").parts
    here = rel[:-1]  # the module's package below mnistgan (its own, for an __init__)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(here[:len(here) - (node.level - 1)]) if node.level > 1 else list(here)
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "mnistgan":
                parts = node.module.split(".")[1:]
            else:
                continue
            # `from .store import files` imports the room store.files; `from .x import name` the room x
            for a in node.names:
                target = parts + [a.name] if is_module(parts + [a.name]) else parts
                if target:
                    found.add(room_of(target))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("mnistgan."):
                    found.add(room_of(a.name.split(".")[1:]))
    return found - {room(path)}


MODULES = sorted(p for p in PKG.rglob("*.py"))
ROOMS = {room(p) for p in MODULES} - {"__init__", "__main__"} - SPLIT  # (a split package's __init__ is a docstring)
ROOMS |= {"data"}  # (data/__init__: the datasets)
GRAPH: dict[str, set[str]] = {}
for p in MODULES:
    GRAPH.setdefault(room(p), set()).update(imports_of(p))

ENGINE = {"training.trainer", "training.steps", "training.fastpath", "training.graphs", "training.objectives",
          "training.augment", "training.optim", "training.stats"}
FLOOR = {"errors", "system.numbers"}  # what every room may import
# room -> rooms it must never import (docs/ARCHITECTURE.md, "Who may import whom")
FORBIDDEN = {
    "models": {"training.trainer", "data", "cli", "runs", "callbacks", "training.objectives", "metrics", "generation"},
    "training.objectives": {"data", "training.trainer", "runs", "callbacks", "cli", "metrics"},
    "metrics": {"training.trainer", "runs", "callbacks", "cli", "generation", "training.objectives"},
    "generation": {"training.trainer", "runs", "callbacks", "cli", "training.objectives", "data", "metrics"},
    "training.trainer": {"runs", "cli", "metrics", "images", "store.files", "store.rundir"},
    "training.steps": {"training.trainer", "runs", "cli", "callbacks", "metrics", "data", "store.files", "images",
                       "store.checkpoint"},
    "callbacks": {"training.trainer", "runs", "cli", "training.steps", "api", "evaluation"},
    "store.rundir": ROOMS - {"store.rundir", "store.files"} - FLOOR,
    "images": ROOMS - {"images"},
    "errors": ROOMS - {"errors"},
    "store.files": ROOMS - {"store.files"} - FLOOR,
    "system.numbers": ROOMS - {"system.numbers", "errors"},
    "system.runtime": ROOMS - {"system.runtime", "system.threads"} - FLOOR,
    "system.threads": ROOMS - {"system.threads"} - FLOOR,
    "system.seeds": ROOMS - {"system.seeds"} - FLOOR,
    "config": ROOMS - {"config", "registry"} - FLOOR,
    "registry": ROOMS - {"registry", "errors"},
    "training.stats": ROOMS - {"training.stats"} - FLOOR,
    "system.distributed": ROOMS - {"system.distributed"} - FLOOR,
    "data.folder": ROOMS - {"data.folder", "store.files", "system.threads", "registry"} - FLOOR,
    "training.augment": ROOMS - {"training.augment", "registry"} - FLOOR,
    "training.graphs": ROOMS - {"training.graphs"} - FLOOR,
}
# The floors: store and system never import the training engine, models or anything above them.
for _room in ROOMS:
    if _room.startswith(("store.", "system.")):
        FORBIDDEN[_room] = FORBIDDEN.get(_room, set()) | ENGINE | {"models", "runs", "api", "cli", "generation",
                                                                   "evaluation", "callbacks", "metrics", "data"}
for _room in ROOMS - {"cli", "web"}:  # the web page is started by the CLI alone
    FORBIDDEN[_room] = FORBIDDEN.get(_room, set()) | {"web"}
# data imports only config, errors, the store's files and its own modules (files: the cache folder;
# it imports nothing of the package but errors, so data stays below every room that knows about
# models); reading IDX files needs nothing but errors, finding and downloading the cache folder.
ALLOWED = {"data": {"config", "errors", "store.files", "data.folder", "data.idx", "data.sources", "data.stacked"},
           "data.idx": {"errors"}, "data.sources": {"errors", "store.files"}, "data.stacked": set(),
           # the zoo names the package's model folders: it reads their headers, nothing more
           "zoo": {"errors", "store.modelfolder"},
           # a model folder is checkpoint-format weights, its config and card: no networks built here
           "store.modelfolder": {"config", "errors", "store.checkpoint", "store.files"}}


def test_the_graph_was_read():
    assert {"training.trainer", "training.objectives", "generation", "callbacks", "runs", "store.files",
            "system.runtime", "training.steps", "data", "data.folder"} <= ROOMS
    assert "training.objectives" in GRAPH["training.trainer"] and "training.trainer" in GRAPH["runs"]
    assert "callbacks" in GRAPH["training.trainer"]  # a type-only import (Callback) is read too
    assert "store.files" in GRAPH["store.rundir"] and "data.folder" in GRAPH["data"]


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_no_forbidden_imports(name):
    assert not GRAPH.get(name, set()) & FORBIDDEN[name], f"{name} imports {GRAPH[name] & FORBIDDEN[name]}"


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_the_data_rooms_import_only_what_they_may(name):
    assert GRAPH[name] <= ALLOWED[name], GRAPH[name]


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
