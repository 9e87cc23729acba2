"""Fan-out curves: `sleep 1` and a 20-step deploy on 1 to 200 hosts, gonogo vs OpenSSH vs Ansible.

    python bench/fanout.py [--counts 1,10,50,100,200] [--servers 200] [--repeats 3]
                           [--ansible-counts 1,10,50,100,200] [--no-ansible] [--quick]

Starts `--servers` loopback sshd processes (tests/support/sshd.py, `-r`: no re-exec per
connection; a clean HOME, so the machine's `.bashrc` never runs) and spreads the host entries
over them (one sshd per host by default). For each count it times, in the same run, the tools
of `bench/fanout_tools.py` on two workloads:

- `sleep 1` on every host, fresh connections each run;
- the 20-step deploy of tests/support/deploy20.py (release dir, 1 MB artifact uploaded once per
  host over SFTP, checksum, extract, links, symlink switch, restart, health, prune...),
  connections reused across the steps; after every run each host's release is checked
  (untimed): a tool whose deploy did not take counts as failed.

Runs are interleaved (each repeat runs every tool, rotating order) so machine load hits every
tool alike; cells are medians (Ansible: one run per cell, it is slow). Every sshd shares the
client's 2 cores: the server side of 200 hosts is most of the machine's CPU, so the machine
CPU and the 1-minute load are recorded with each cell. Client CPU per host step = the tool's
own CPU / (hosts x steps).

Goals: `sleep 1` T(200)/T(1) <= 3.0; the deploy at 200 hosts <= 1.3x the OpenSSH floor and
<= 0.2x Ansible. Writes bench/results/fanout.md and the PNG plots fanout-*.png beside it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import paramiko  # noqa: E402
from fanout_tools import Ansible, OpenSSH, Timing, gonogo_deploy, gonogo_sleep  # noqa: E402
from plots import draw  # noqa: E402

from runners import Host  # noqa: E402
from tests.support.deploy20 import Artifact, check_host, make_artifact, stop_apps  # noqa: E402
from tests.support.sshd import SSHFleet, start_fleet  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOOLS = ("gonogo", "openssh", "ansible")
LABELS = {"gonogo": "gonogo", "openssh": "OpenSSH floor", "ansible": "Ansible"}
WORKLOADS = {"sleep": ("`sleep 1`", 1), "deploy": ("20-step deploy", 20)}
TARGET_SCALING, TARGET_FLOOR, TARGET_ANSIBLE = 3.0, 1.3, 0.2


def pin_paramiko_kex() -> None:
    """paramiko offers only curve25519-sha256 (what it negotiates with OpenSSH 9.2 anyway)."""
    paramiko.Transport._preferred_kex = ("curve25519-sha256@libssh.org",)


def machine_cpu() -> float:
    """CPU seconds used so far by every process on the machine (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Cell:
    """The samples of one (workload, tool, hosts) cell."""

    walls: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    machine: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    failed: str | None = None

    @property
    def wall(self) -> float | None:
        return statistics.median(self.walls) if self.walls and not self.failed else None


class Bench:
    """The fleet, the tools and the samples."""

    def __init__(self, fleet: SSHFleet, work: Path, artifact: Artifact, ansible: Ansible | None) -> None:
        self.fleet = fleet
        self.work = work
        self.artifact = artifact
        self.openssh = OpenSSH(fleet, work)
        self.ansible = ansible
        self.cells: dict[tuple[str, str, int], Cell] = {}
        self._runs = 0

    def runner(self, workload: str, tool: str) -> Callable[[list[Host]], Timing]:
        if workload == "sleep":
            return {
                "gonogo": lambda hosts: gonogo_sleep(self.fleet, hosts),
                "openssh": self.openssh.sleep,
                "ansible": lambda hosts: self.ansible.sleep(hosts),  # type: ignore[union-attr]
            }[tool]
        return lambda hosts: self._deploy(tool, hosts)

    def _deploy(self, tool: str, hosts: list[Host]) -> Timing:
        self._runs += 1
        root, release = self.work / f"srv-{self._runs}", f"r{self._runs}"
        deploy = {
            "gonogo": lambda: gonogo_deploy(self.fleet, hosts, root, release, self.artifact),
            "openssh": lambda: self.openssh.deploy(hosts, root, release, self.artifact),
            "ansible": lambda: self.ansible.deploy(hosts, root, release, self.artifact),  # type: ignore[union-attr]
        }[tool]
        try:
            timing = deploy()
            problems = [p for h in hosts for p in check_host(root / h.name, release, self.artifact)]
            if problems:
                raise RuntimeError(f"{len(problems)} problems, e.g. {problems[:3]}")
            return timing
        finally:
            stop_apps(root)
            shutil.rmtree(root, ignore_errors=True)

    def sample(self, workload: str, tool: str, hosts: list[Host]) -> None:
        cell = self.cells.setdefault((workload, tool, len(hosts)), Cell())
        if cell.failed:
            return
        load, machine = os.getloadavg()[0], machine_cpu()
        try:
            wall, client = self.runner(workload, tool)(hosts)
        except Exception as exc:
            cell.failed = f"{type(exc).__name__}: {str(exc)[:300]}"
            print(f"{tool} {workload} {len(hosts)}: FAILED {cell.failed}", file=sys.stderr)
            return
        cell.walls.append(wall)
        cell.client.append(client)
        cell.machine.append(machine_cpu() - machine)
        cell.loads.append(load)
        print(f"{tool:8} {workload:6} {len(hosts):4}: {wall:7.2f} s, client {client:6.2f} s, load {load:.1f}",
              file=sys.stderr, flush=True)  # fmt: skip


def run(bench: Bench, hosts: list[Host], args: argparse.Namespace) -> None:
    """Every repeat runs every tool (rotating order) on every cell."""
    tools = [t for t in TOOLS if t != "ansible" or bench.ansible is not None]
    for rep in range(args.repeats):
        order = tools[rep % len(tools) :] + tools[: rep % len(tools)]
        for workload in WORKLOADS:
            for n in args.counts:
                for tool in order:
                    if tool == "ansible" and (rep > 0 or n not in args.ansible_counts):
                        continue
                    bench.sample(workload, tool, hosts[:n])


# -- the report -----------------------------------------------------------------------------------
def fmt(value: float | None, unit: str = " s") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdict(value: float | None, target: float) -> str:
    return "n/a" if value is None else ("ok" if value <= target else "**missed**")


def report(bench: Bench, args: argparse.Namespace, notes: dict[str, str]) -> str:
    cells, counts = bench.cells, args.counts

    def wall(w: str, t: str, n: int) -> float | None:
        cell = cells.get((w, t, n))
        return cell.wall if cell else None

    lines = [
        f"## SSH fan-out curves: 1 to {max(counts)} loopback hosts ({args.servers} sshd `-r`, every host at once)",
        "",
    ]
    for w, (title, steps) in WORKLOADS.items():
        lines += [
            f"### {title}" + (" (connections reused across the steps, 1 MB uploaded once per host)" if steps > 1 else " (fresh connections)"),
            "",
            "| hosts | gonogo | OpenSSH floor | Ansible | gonogo / OpenSSH | gonogo / Ansible | gonogo T(n)/T(1) | OpenSSH T(n)/T(1) | machine CPU (gonogo run) | load before |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for n in counts:
            g, o, a = (wall(w, t, n) for t in TOOLS)
            gcell = cells.get((w, "gonogo", n), Cell())
            machine = statistics.median(gcell.machine) if gcell.machine else None
            lines.append(
                f"| {n} | {fmt(g)} | {fmt(o)} | {fmt(a)} | {fmt(ratio(g, o), 'x')} | {fmt(ratio(g, a), 'x')} "
                f"| {fmt(ratio(g, wall(w, 'gonogo', counts[0])), 'x')} | {fmt(ratio(o, wall(w, 'openssh', counts[0])), 'x')} "
                f"| {fmt(machine)} | {statistics.median(gcell.loads) if gcell.loads else float('nan'):.1f} |"
            )
        failed = [
            f"{LABELS[t]} at {n}: {c.failed}" for (wl, t, n), c in cells.items() if wl == w and c.failed
        ]
        lines += ["", *(f"- failed: {f}" for f in failed), ""] if failed else [""]
    lines += [
        "### Client CPU per host step (the tool's own processes; ms)",
        "",
        "| workload | tool | " + " | ".join(f"{n} hosts" for n in counts) + " |",
        "|---|---|" + "---|" * len(counts),
    ]
    for w, (title, steps) in WORKLOADS.items():
        for t in TOOLS:
            row = []
            for n in counts:
                cell = cells.get((w, t, n))
                value = statistics.median(cell.client) / (n * steps) * 1000 if cell and cell.client else None
                row.append(fmt(value, ""))
            lines.append(f"| {title} | {LABELS[t]} | " + " | ".join(row) + " |")
    top = max(counts)
    scaling = ratio(wall("sleep", "gonogo", top), wall("sleep", "gonogo", counts[0]))
    floor_scaling = ratio(wall("sleep", "openssh", top), wall("sleep", "openssh", counts[0]))
    vs_floor = ratio(wall("deploy", "gonogo", top), wall("deploy", "openssh", top))
    vs_ansible = ratio(wall("deploy", "gonogo", top), wall("deploy", "ansible", top))
    lines += [
        "",
        "### Goals (one run)",
        "",
        f"- `sleep 1`: T({top})/T(1) = {fmt(scaling, 'x')} (<= {TARGET_SCALING}x: {verdict(scaling, TARGET_SCALING)}; "
        f"the OpenSSH floor itself: {fmt(floor_scaling, 'x')})",
        f"- 20-step deploy at {top} hosts: {fmt(vs_floor, 'x')} the OpenSSH floor (<= {TARGET_FLOOR}x: "
        f"{verdict(vs_floor, TARGET_FLOOR)}), {fmt(vs_ansible, 'x')} Ansible (<= {TARGET_ANSIBLE}x: "
        f"{verdict(vs_ansible, TARGET_ANSIBLE)})",
        "",
        "Plots: `fanout-sleep.png`, `fanout-deploy.png`, `fanout-cpu.png`.",
        "",
        f"Each cell: median of {args.repeats} runs (Ansible: 1), interleaved across tools, from nothing to every "
        "host done (connections closed, ControlPersist masters stopped), every deploy checked on every host "
        f"afterwards. Key exchange: curve25519-sha256 for every tool. {notes['ansible']}. Machine: "
        f"{os.cpu_count()} cores, {notes['memory']}, Python {sys.version.split()[0]}, paramiko {paramiko.__version__}, "
        f"{notes['ssh']}; {args.servers} sshd processes started in {notes['fleet']}. 1-minute load average: "
        f"{notes['load_before']} before the run, {notes['load_after']} after (the machine is shared with other work: "
        "the per-cell load column says what each gonogo cell ran under).",
    ]
    return "\n".join(lines) + "\n"


def plots(bench: Bench, args: argparse.Namespace, note: str) -> str | None:
    counts, specs = args.counts, []
    for w, (title, _steps) in WORKLOADS.items():
        series = []
        for t in TOOLS:
            points = [(n, c.wall) for n in counts if (c := bench.cells.get((w, t, n))) and c.wall is not None]
            if points:
                series.append({"label": LABELS[t], "x": [p[0] for p in points], "y": [p[1] for p in points]})
        specs.append({
            "out": str(RESULTS / f"fanout-{w}.png"), "title": f"{title}: wall time by fleet size",
            "xlabel": "hosts", "ylabel": "seconds (log)", "series": series, "note": note, "logy": True,
        })  # fmt: skip
    series = []
    for w, (title, steps) in WORKLOADS.items():
        for t in ("gonogo", "openssh"):
            points = [(n, statistics.median(c.client) / (n * steps) * 1000) for n in counts
                      if (c := bench.cells.get((w, t, n))) and c.client]  # fmt: skip
            series.append(
                {"label": f"{LABELS[t]}, {title}", "x": [p[0] for p in points], "y": [p[1] for p in points]}
            )
    specs.append({
        "out": str(RESULTS / "fanout-cpu.png"), "title": "client CPU per host step",
        "xlabel": "hosts", "ylabel": "ms", "series": series, "note": note,
    })  # fmt: skip
    return draw(specs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,10,50,100,200")
    parser.add_argument("--servers", type=int, default=0, help="sshd processes (default: one per host)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ansible-counts", default=None, help="host counts Ansible runs (default: all)")
    parser.add_argument("--no-ansible", action="store_true")
    args = parser.parse_args()
    args.counts = [int(c) for c in args.counts.split(",")]
    args.ansible_counts = [
        int(c) for c in (args.ansible_counts or ",".join(map(str, args.counts))).split(",")
    ]
    args.servers = args.servers or max(args.counts)
    pin_paramiko_kex()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="gonogo-fanout-"))
    started = time.monotonic()
    fleet = start_fleet(args.servers, work / "fleet", reexec=False)
    notes = {"fleet": f"{time.monotonic() - started:.1f} s", "load_before": f"{load_before:.2f}"}
    try:
        artifact = make_artifact(work / "build")
        ansible: Ansible | None = None
        notes["ansible"] = "Ansible not run (--no-ansible)"
        if not args.no_ansible:
            candidate = Ansible(fleet, work)
            problem = candidate.install()
            ansible = candidate if problem is None else None
            notes["ansible"] = (
                f"Ansible: {candidate.version}, pipelining on, forks = hosts" if problem is None
                else f"Ansible n/a: could not install ansible-core ({problem[:200]})"
            )  # fmt: skip
        bench = Bench(fleet, work, artifact, ansible)
        hosts = fleet.hosts(max(args.counts))
        for tool in ("gonogo", "openssh"):  # warm-up: imports, page cache
            bench.runner("sleep", tool)(hosts[:10])
        run(bench, hosts, args)
    finally:
        fleet.stop()
        shutil.rmtree(work, ignore_errors=True)
    notes["load_after"] = f"{os.getloadavg()[0]:.2f}"
    notes["ssh"] = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    notes["memory"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM"
    text = report(bench, args, notes)
    note = f"{os.cpu_count()} cores, {args.servers} loopback sshd sharing them; load {notes['load_before']} before, {notes['load_after']} after"
    problem = plots(bench, args, note)
    if problem:
        text += f"\n({problem})\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fanout.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
