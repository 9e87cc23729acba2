"""The runners layers keep SSHKit's order: command lines below the backends, the backends below the
pipeline, and nothing inside runners goes through its own face (the faces are checked for every
package in tests/test_imports.py)."""

from __future__ import annotations

import ast
from pathlib import Path

RUNNERS = Path(__file__).resolve().parents[2] / "runners"


def _imports(path: Path) -> set[str]:
    """Every module `path` imports (type-only imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_backends_and_the_command_lines_import_nothing_from_the_pipeline() -> None:
    below = [RUNNERS / "command.py", RUNNERS / "progress.py", *sorted((RUNNERS / "backends").rglob("*.py"))]
    bad = {p.name: sorted(i for i in _imports(p) if i == "runners.pipeline") for p in below}
    assert {name: deps for name, deps in bad.items() if deps} == {}


def test_code_inside_runners_imports_its_siblings_not_the_runners_face() -> None:
    bad = [
        str(p.relative_to(RUNNERS))
        for p in sorted(RUNNERS.rglob("*.py"))
        if p.name != "__init__.py" and "runners" in _imports(p)
    ]
    assert bad == []
