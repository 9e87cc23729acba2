"""Every shipped example passes `gonogo config check` (the CLI, in a subprocess), as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.examples import EXAMPLES

ROOT = EXAMPLES.parent
SHIPPED = sorted(EXAMPLES.glob("*.toml"))


def test_the_examples_are_there() -> None:
    assert {p.stem for p in SHIPPED} == {
        "db-migration",
        "idempotent",
        "build-and-restart",
        "staged-release",
        "health-probes",
    }


@pytest.mark.parametrize("example", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_an_example_passes_config_check(example: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(example.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"examples/{example.name}: OK"), proc.stdout
    assert "Traceback" not in proc.stderr
