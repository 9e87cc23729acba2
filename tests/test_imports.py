"""The shape of the code, checked: which package may import what, no import cycles (type-only
imports included), small modules, and each package's public face.

Imports are read from the source: module level, inside functions and under `if TYPE_CHECKING:`
alike, since a type-only import ties two modules together as surely as a runtime one.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "commands", "runners")
#: The platforms that sit behind seams: domain logic and commands never import them.
PLATFORMS = ("slack_bolt", "slack_sdk", "fabric", "paramiko", "invoke", "sqlite_utils", "sqlite3", "psycopg")
#: No module is longer than this (lines); a module that grows past it holds more than one thing.
MAX_MODULE_LINES = 400

#: The flow, top to bottom: a module may import its own layer and the layers below it, never
#: one above. The longest matching prefix decides a module's layer.
LAYERS: dict[str, int] = {
    "bot.app": 6,  # the composition root: CLI, serve, wiring, backends, manifest
    "bot.slack": 5,  # adapters, and the service's own HTTP endpoints
    "bot.console": 5,
    "bot.ops": 5,
    "bot.web": 5,  # the read-only web view
    "commands": 4,  # the chat command language
    "bot.engine": 3,  # the deploy engine
    "bot.config": 2,  # the seams and what the engine reads
    "bot.source": 2,
    "bot.integrations": 2,  # the code host and pagers, over httpx
    "bot.store": 2,
    "bot.timing": 2,
    "bot.chat": 2,
    "bot.ops.metrics": 1,  # infrastructure every layer may count or log with
    "bot.ops.logs": 1,
    "bot.domain": 1,  # pure
    "bot": 1,
    "runners": 0,  # executes what it is given
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from bot.ops import metrics` imports the module bot.ops.metrics; `from bot.domain
            # import State` imports bot.domain: `_ours` walks a name up to the module it is in.
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


SOURCES = {_module(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
GRAPH = {module: _imports(path) for module, path in SOURCES.items()}


def _ours(name: str) -> str | None:
    """The module of ours that `name` is (or is inside), if any."""
    while name:
        if name in GRAPH:
            return name
        name = name.rpartition(".")[0]
    return None


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


EDGES = {m: {o for i in deps if (o := _ours(i)) and o != m} for m, deps in GRAPH.items()}


def test_runners_import_nothing_from_the_bot_or_the_commands() -> None:
    bad = {m: sorted(i for i in deps if i.split(".")[0] in ("bot", "commands")) for m, deps in GRAPH.items()}
    assert {m: deps for m, deps in bad.items() if m.startswith("runners") and deps} == {}


def test_imports_follow_the_flow_and_never_go_back_up() -> None:
    upward = {m: sorted(o for o in deps if _layer(o) > _layer(m)) for m, deps in EDGES.items()}
    assert {m: deps for m, deps in upward.items() if deps} == {}


def test_commands_and_adapters_use_only_the_engine_face_and_the_domain() -> None:
    """Commands, the Slack adapter and the console know the engine by its face (`bot.engine`)."""
    users = ("commands", "bot.slack", "bot.console")
    bad = {
        m: sorted(
            o for o in deps if o.startswith("bot.engine.") or (m.startswith("commands") and _layer(o) == 2)
        )
        for m, deps in EDGES.items()
        if m.startswith(users)
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_the_engine_parts_never_import_the_engine_facade() -> None:
    """Runs, monitoring, sign-off and the rest depend on `bot.engine.port`, never on `Engine`."""
    facade = {"bot.engine.engine", "bot.engine"}
    bad = {
        m: sorted(deps & facade)
        for m, deps in EDGES.items()
        if m.startswith("bot.engine.") and m != "bot.engine.engine"
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_domain_logic_and_commands_import_no_platform() -> None:
    bad = {
        m: sorted(i for i in deps if i.split(".")[0] in PLATFORMS)
        for m, deps in GRAPH.items()
        if m.startswith(("bot.domain", "bot.engine", "commands"))
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_the_domain_is_pure() -> None:
    bad = {
        m: sorted(o for o in deps if not o.startswith("bot.domain"))
        for m, deps in EDGES.items()
        if m.startswith("bot.domain")
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_there_are_no_import_cycles_not_even_type_only_ones() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(EDGES[module]):
            # a package's face re-exporting its own modules is not a cycle of ours
            if module == dep.rpartition(".")[0] or dep == module.rpartition(".")[0]:
                continue
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [module, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(EDGES):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_module_is_longer_than_the_ceiling() -> None:
    long = {m: n for m, p in SOURCES.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_every_package_names_exactly_its_public_face() -> None:
    """Each package's `__init__` declares `__all__`: every name in it is there (httpx style), and
    everything public it holds (but its own submodules) is in it."""
    missing: list[str] = []
    wrong: dict[str, tuple[list[str], list[str]]] = {}
    for module, path in SOURCES.items():
        if path.name != "__init__.py":
            continue
        if "__all__" not in path.read_text():
            missing.append(module)
            continue
        package = importlib.import_module(module)
        absent = sorted(name for name in package.__all__ if not hasattr(package, name))
        public = {
            name
            for name, value in vars(package).items()
            if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
        }
        unlisted = sorted(public - set(package.__all__))
        if absent or unlisted:
            wrong[module] = (absent, unlisted)
    assert missing == [] and wrong == {}
