"""The shape of the code, checked: which package may import what, and no import cycles.

Imports are read from the source (module level and inside functions alike; only blocks under
`if TYPE_CHECKING:` are left out, since they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "commands", "runners")
#: The platforms that sit behind seams: domain logic and commands never import them.
PLATFORMS = ("slack_bolt", "slack_sdk", "fabric", "paramiko", "invoke", "sqlite_utils", "sqlite3", "psycopg")
DOMAIN = ("bot.domain", "bot.engine")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for body in node.body for n in ast.walk(body)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


GRAPH = {
    _module(path): _imports(path) for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
}


def _ours(name: str) -> str | None:
    """The module of ours that `name` is (or is inside), if any."""
    while name:
        if name in GRAPH:
            return name
        name = name.rpartition(".")[0]
    return None


def test_runners_import_nothing_from_the_bot_or_the_commands() -> None:
    bad = {m: sorted(i for i in deps if i.split(".")[0] in ("bot", "commands")) for m, deps in GRAPH.items()}
    assert {m: deps for m, deps in bad.items() if m.startswith("runners") and deps} == {}


def test_commands_use_only_the_engine_and_the_domain_it_returns() -> None:
    allowed = ("bot.engine", "bot.domain")
    bad = {
        m: sorted(i for i in deps if i.split(".")[0] == "bot" and not i.startswith(allowed))
        for m, deps in GRAPH.items()
        if m.startswith("commands")
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_domain_logic_and_commands_import_no_platform() -> None:
    bad = {
        m: sorted(i for i in deps if i.split(".")[0] in PLATFORMS)
        for m, deps in GRAPH.items()
        if m.startswith(DOMAIN) or m.startswith("commands")
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_there_are_no_import_cycles() -> None:
    edges = {m: {o for i in deps if (o := _ours(i)) and o != m} for m, deps in GRAPH.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(edges[module]):
            # a package's __init__ re-exporting its own modules is not a cycle of ours
            if dep == module.rpartition(".")[0] or module == dep.rpartition(".")[0]:
                continue
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [module, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []
