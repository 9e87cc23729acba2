"""A quiet, forgiving start: the package builds without warnings, set-up is quiet unless it fails.

The build is real (pip builds a wheel of this checkout with the setuptools pyproject.toml asks
for); the bootstrap script runs for real over a stand-in Python whose "pip" prints noise and
succeeds or fails on demand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_the_package_builds_without_a_single_warning(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("bot", "commands", "runners"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(tmp_path / "wheels"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout + proc.stderr == "", proc.stdout + proc.stderr  # no deprecation warnings
    assert list((tmp_path / "wheels").glob("gonogo-*.whl"))


FAKE_PYTHON = """#!/bin/sh
echo "pip $*: SetuptoolsDeprecationWarning: some noise"
echo "more noise on stderr" >&2
if [ -n "${FAIL_INSTALL:-}" ] && [ "$5" = "install" ] && [ "$6" = "-e" ]; then
    echo "ERROR: No matching distribution found for frobnicate" >&2
    exit 1
fi
exit 0
"""


def bootstrap(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    if not (tmp_path / "pyproject.toml").exists():
        (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return subprocess.run(
        ["bash", str(tmp_path / "scripts" / "bootstrap.sh")],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip


def test_set_up_is_one_line_when_it_works_and_everything_when_it_fails(tmp_path: Path) -> None:
    ok = bootstrap(tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == ""
    assert ok.stderr.splitlines() == ["Installing gonogo into .venv (once; the log is .venv/install.log)..."]
    again = bootstrap(tmp_path)  # installed: nothing to do, nothing said
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")

    (tmp_path / ".venv" / ".installed").unlink()
    failed = bootstrap(tmp_path, FAIL_INSTALL="1")
    assert failed.returncode == 1
    assert "scripts/bootstrap.sh: this failed: .venv/bin/python -m pip" in failed.stderr
    assert "ERROR: No matching distribution found for frobnicate" in failed.stderr
    assert "more noise on stderr" in failed.stderr  # shown in full
    assert not (tmp_path / ".venv" / ".installed").exists()  # the next run tries again
