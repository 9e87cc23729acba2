"""Benchmark for the step journal: what running a step under the host-side wrapper costs, on
the local backend and over a real sshd, against the same step run bare in the same run.

    python bench/journal.py [--runs 40] [--work 0.5]

For each backend, the median seconds of one step run through a `HostSession` (one open session,
as a deploy keeps per host), bare (no journal name: the baseline) and under the journal (a new
journal name per run, so every run really runs), for a trivial step (`true`: the wrapper's whole
cost) and for a step of `--work` seconds of real work (what a deploy step feels).

Prints a markdown table with the ratios and writes bench/results/journal.md. Never gates CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runners import Host
from runners.backends.local import LocalBackend
from runners.backends.ssh import SSHBackend
from runners.base import HostSession
from tests.support.sshd import start_fleet

ROOT = Path(__file__).resolve().parent.parent


def median_run(session: HostSession, command: str, runs: int, journal: Callable[[int], str | None]) -> float:
    """Median seconds of `runs` runs of `command` on `session`, the i-th under `journal(i)`."""
    times = []
    for i in range(runs):
        began = time.perf_counter()
        outcome = session.run(command, timeout=60, env={}, on_output=lambda _: None, journal=journal(i))
        times.append(time.perf_counter() - began)
        assert outcome.exit_code == 0, outcome
    return statistics.median(times)


def measure(name: str, session: HostSession, args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    """(backend, step, bare seconds, journaled seconds) for the trivial and the working step."""
    rows = []
    for label, command, runs in (
        ("`true`", "true", args.runs),
        (f"`sleep {args.work:g}`", f"sleep {args.work:g}", max(5, args.runs // 4)),
    ):
        median_run(session, command, 3, lambda _: None)  # warm up (the shell, the channel)
        bare = median_run(session, command, runs, lambda _: None)
        tag = label.strip("`").replace(" ", "-")

        def fresh(i: int, tag: str = tag) -> str:
            return f"bench/{tag}.{i}"  # a name of its own per run: every run really runs

        journaled = median_run(session, command, runs, fresh)
        rows.append((name, label, bare, journaled))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--work", type=float, default=0.5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="gonogo-journal-"))
    rows: list[tuple[str, str, float, float]] = []
    local = LocalBackend(journal_root=str(work / "local-journal"))
    session = local.open(Host("localhost"))
    rows += measure("local", session, args)
    session.close()
    fleet = start_fleet(1, work / "fleet", reexec=False)
    try:
        ssh = SSHBackend(fleet.options())
        ssh.journal_root = str(work / "ssh-journal")
        try:
            rows += measure("ssh (loopback sshd)", ssh.open(fleet.host("app1")), args)
        finally:
            ssh.close()
    finally:
        fleet.stop()
    lines = [
        "## The step journal: one step bare vs under the host-side wrapper",
        "",
        "| backend | step | bare (baseline) | journaled | overhead | ratio |",
        "|---|---|---|---|---|---|",
        *(
            f"| {b} | {s} | {bare * 1000:.1f} ms | {j * 1000:.1f} ms | {(j - bare) * 1000:+.1f} ms | {j / bare:.2f}x |"
            for b, s, bare, j in rows
        ),
        "",
        f"Medians of {args.runs} runs (the working step: {max(5, args.runs // 4)}), one open session each. "
        "The wrapper starts the step in its own session, records it on the host and polls its "
        "output (10 ms at first, 50 ms for 2 s, 100 ms for 30 s, then 250 ms): a fixed cost per step, noise next to real work. "
        f"1-minute load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores (above the core count, every figure is skewed: rerun on a quiet machine).",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    (ROOT / "bench" / "results" / "journal.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
