"""PNG plots for the benches: matplotlib in the benches' own cached venv, never the product's.

    from plots import draw
    problem = draw([{"out": "bench/results/x.png", "title": ..., "series": [...]}, ...])

The first call creates `$XDG_CACHE_HOME/gonogo-bench/plots` (else `~/.cache/...`) with pip's
matplotlib; `bench/plot.py` draws there from a JSON file. Returns None, or why there are no plots
(the markdown tables are written either way).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def cache_dir(name: str) -> Path:
    """A directory of the benches' own cache (venvs for Ansible, matplotlib)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gonogo-bench" / name


def bench_venv(name: str, *packages: str) -> Path:
    """The python of a cached venv with `packages` installed (pip; created on first use)."""
    venv = cache_dir(name)
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *packages],
            check=True,
            capture_output=True,
            timeout=900,
        )
        stamp.write_text(" ".join(packages) + "\n")
    return python


def draw(specs: list[dict[str, Any]]) -> str | None:
    """Draw every spec to its `out` PNG; None when done, else the reason."""
    try:
        python = bench_venv("plots", "matplotlib")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(specs, fh)
        subprocess.run(
            [str(python), str(HERE / "plot.py"), fh.name], check=True, capture_output=True, timeout=300
        )
        os.unlink(fh.name)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        return f"no plots: {exc} {text[-300:]}".strip()
    return None
