"""Run every benchmark and collect their markdown tables into bench/RESULTS.md.

    .venv/bin/python bench/run_all.py [--only NAME ...]

Each benchmark prints ratios against a baseline measured in the same run; none gates CI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "ack_latency",
    "fanout",
    "checks",
    "metric_checks",
    "store",
    "memory",
    "web",
    "runbook",
    "progress",
    "replicas",
    "many_deploys",
    "journal",
]


def main(argv: list[str] | None = None) -> int:
    """Run the benches (those present), print and write the combined report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="bench names to run (default: all)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per bench (default 1800)")
    args = parser.parse_args(argv)
    names = [n for n in BENCHES if (HERE / f"{n}.py").exists() and (not args.only or n in args.only)]
    sections = [f"# Benchmarks\n\nRun {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {_machine()}.\n"]
    status = 0
    for name in names:
        started = time.monotonic()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / f"{name}.py")],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                cwd=HERE.parent,
            )
            body = proc.stdout.strip() or proc.stderr.strip()[-2000:]
            note = (
                ""
                if proc.returncode == 0
                else f"\n\n(exit {proc.returncode}: a target was missed or the bench failed)"
            )
            status = status or proc.returncode
        except subprocess.TimeoutExpired:
            body, note, status = "", f"(timed out after {args.timeout:.0f} s)", 1
        sections.append(f"## {name} ({time.monotonic() - started:.0f} s)\n\n{body}{note}\n")
    report = "\n".join(sections)
    (HERE / "RESULTS.md").write_text(report)
    print(report)
    return status


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
