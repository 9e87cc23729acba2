"""Fan-out benchmark: one step on 1, 10 and 50 hosts over SSH, gonogo vs OpenSSH vs Ansible.

    python bench/fanout.py [--servers 10] [--repeats 3] [--no-ansible]

Starts `--servers` loopback sshd processes (tests/sshd.py: own host keys, MaxStartups raised,
clean HOME so no .bashrc runs) and spreads 50 host entries over them. For `true` and `sleep 1`
on 1, 10 and 50 hosts it times, each time from nothing to all hosts done (fresh connections):

- gonogo: `Pipeline(SSHBackend(...), hosts, Strategy("parallel", max_parallel=50))`, one stage,
  then `close()`;
- the OpenSSH floor: `xargs -P 50 ssh -o KexAlgorithms=curve25519-sha256 -o BatchMode=yes ...`
  (same key, same known_hosts, same key exchange paramiko negotiates: DESIGN §4);
- Ansible ad-hoc: `ansible all -m command -a CMD -f 50` from ansible-core installed into a
  cached venv (`$XDG_CACHE_HOME/gonogo-bench/ansible`, else `~/.cache/...`); same key, known_hosts
  and key exchange, a fresh ControlPersist directory per run (cold connections like the others).
  'n/a' when it cannot be installed.

Prints a markdown table (medians) and writes it to bench/results/fanout.md. Targets for
`sleep 1` at 50 hosts: T(50)/T(1) <= 2.0, <= 1.3x the OpenSSH floor, <= 0.2x Ansible.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runners.base import Host, Step  # noqa: E402
from runners.pipeline import Pipeline  # noqa: E402
from runners.ssh import SSHBackend  # noqa: E402
from runners.strategy import Strategy  # noqa: E402
from tests.sshd import SSHFleet, start_fleet  # noqa: E402

COUNTS = (1, 10, 50)
COMMANDS = ("true", "sleep 1")
KEX = "curve25519-sha256"
TARGET_SCALING, TARGET_FLOOR, TARGET_ANSIBLE = 2.0, 1.3, 0.2


def time_gonogo(fleet: SSHFleet, hosts: list[Host], command: str) -> float:
    """Wall time of one stage with one step on `hosts`, fresh connections, closed at the end."""
    started = time.perf_counter()
    backend = SSHBackend(fleet.options(connect_timeout=10, max_handshakes=10))
    pipeline = Pipeline(backend, hosts, Strategy("parallel", max_parallel=50), {})
    try:
        result = pipeline.run_stage("deploy", [Step("bench", command)])
    finally:
        pipeline.close()
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"gonogo run failed: {result.failed_step}")
    return elapsed


def time_openssh(fleet: SSHFleet, hosts: list[Host], command: str) -> float:
    """Wall time of `xargs -P 50 ssh ...`, one ssh process per host entry."""
    ports = "".join(f"{h.port}\n" for h in hosts)
    ssh = [
        "ssh", "-F", "/dev/null", "-o", f"KexAlgorithms={KEX}", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={fleet.known_hosts}", "-o", "ControlMaster=no",
        "-i", str(fleet.key), "-l", fleet.user,
    ]  # fmt: skip
    argv = ["xargs", "-P", "50", "-I", "{}", *ssh, "-p", "{}", "127.0.0.1", command]
    started = time.perf_counter()
    proc = subprocess.run(argv, input=ports, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"openssh run failed: {proc.stderr[-500:]}")
    return elapsed


class Ansible:
    """ansible-core in a cached venv, driven with an inventory for the fleet."""

    def __init__(self, fleet: SSHFleet, work: Path) -> None:
        self.fleet = fleet
        self.work = work
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gonogo-bench" / "ansible"
        self.venv = cache
        self.ansible = cache / "bin" / "ansible"
        self.version = ""
        self.config = work / "ansible.cfg"  # an empty config: no ./ansible.cfg or ~/.ansible.cfg
        self.config.write_text("[defaults]\n")

    def install(self) -> str | None:
        """Install ansible-core if needed; return None when ready, else why not."""
        try:
            if not self.ansible.exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(self.venv)], check=True, capture_output=True
                )
                subprocess.run(
                    [str(self.venv / "bin" / "pip"), "install", "--quiet", "ansible-core"],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
            out = subprocess.run([str(self.ansible), "--version"], check=True, capture_output=True, text=True)
            self.version = out.stdout.splitlines()[0]
            return None
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            return f"{exc} {text[-300:]}".strip()

    def inventory(self, hosts: list[Host]) -> Path:
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        path = self.work / f"inventory-{len(hosts)}.ini"
        lines = ["[fleet]"]
        lines += [f"{h.name} ansible_host=127.0.0.1 ansible_port={h.port}" for h in hosts]
        lines += [
            "[fleet:vars]",
            f"ansible_user={self.fleet.user}",
            f"ansible_ssh_private_key_file={self.fleet.key}",
            f"ansible_python_interpreter={python}",
            f"ansible_ssh_common_args=-o UserKnownHostsFile={self.fleet.known_hosts} "
            f"-o KexAlgorithms={KEX} -o IdentitiesOnly=yes",
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def time(self, hosts: list[Host], command: str) -> float:
        """Wall time of one ad-hoc `command` run on `hosts` with 50 forks."""
        inventory = self.inventory(hosts)
        control = Path(tempfile.mkdtemp(prefix="cp-", dir=self.work))  # cold: no ControlPersist reuse
        env = {
            **os.environ,
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_LOCAL_TEMP": str(self.work / "ansible-tmp"),
            "ANSIBLE_CONFIG": str(self.config),
        }
        argv = [str(self.ansible), "all", "-i", str(inventory), "-m", "command", "-a", command, "-f", "50"]
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        elapsed = time.perf_counter() - started
        # Ansible leaves its ControlPersist masters running for 60 s: stop them now.
        for socket_path in control.iterdir():
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "bench"],
                capture_output=True,
                timeout=10,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"ansible run failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
        return elapsed


def machine_cpu() -> float | None:
    """CPU seconds used so far by every process on this machine (Linux /proc/stat), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_during(
    run: Callable[[list[Host], str], float], hosts: list[Host], command: str
) -> tuple[float, float, float]:
    """(wall, machine CPU, this process's CPU) of one run."""
    machine, ours = machine_cpu(), time.process_time()
    wall = run(hosts, command)
    after = machine_cpu()
    used = after - machine if after is not None and machine is not None else float("nan")
    return wall, used, time.process_time() - ours


def median_of(
    repeats: int, run: Callable[[list[Host], str], float], hosts: list[Host], command: str
) -> float:
    """Median wall time of `repeats` runs of `run(hosts, command)`."""
    return statistics.median(run(hosts, command) for _ in range(repeats))


def fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "ok" if value <= target else "missed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=10, help="sshd processes (50 host entries over them)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median)")
    parser.add_argument("--ansible-repeats", type=int, default=1)
    parser.add_argument("--no-ansible", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gonogo-fanout-"))
    fleet = start_fleet(args.servers, work / "fleet")
    try:
        hosts = fleet.hosts(max(COUNTS))
        ansible: Ansible | None = None
        ansible_note = "not run (--no-ansible)"
        if not args.no_ansible:
            candidate = Ansible(fleet, work)
            print("preparing ansible-core (cached venv)...", file=sys.stderr)
            problem = candidate.install()
            if problem is None:
                ansible, ansible_note = candidate, candidate.version
            else:
                ansible_note = f"n/a: could not install ansible-core ({problem[:200]})"
                print(ansible_note, file=sys.stderr)
        gonogo = functools.partial(time_gonogo, fleet)
        openssh = functools.partial(time_openssh, fleet)
        # Warm-up: imports, first connections, page cache for ssh and sshd.
        gonogo(hosts[:10], "true")
        openssh(hosts[:10], "true")

        results: dict[tuple[str, str, int], float | None] = {}
        for command in COMMANDS:
            for n in COUNTS:
                subset = hosts[:n]
                results["gonogo", command, n] = median_of(args.repeats, gonogo, subset, command)
                results["openssh", command, n] = median_of(args.repeats, openssh, subset, command)
                if ansible is not None:
                    results["ansible", command, n] = median_of(
                        args.ansible_repeats, ansible.time, subset, command
                    )
                else:
                    results["ansible", command, n] = None
                print(
                    f"{command!r} x{n}: gonogo {fmt(results['gonogo', command, n])}, "
                    f"openssh {fmt(results['openssh', command, n])}, "
                    f"ansible {fmt(results['ansible', command, n])}",
                    file=sys.stderr,
                )
        # Where the CPU goes at 50 hosts (`true`: the connection work alone).
        g_wall, g_cpu, g_ours = cpu_during(gonogo, hosts, "true")
        o_wall, o_cpu, _ = cpu_during(openssh, hosts, "true")
    finally:
        fleet.stop()
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"## SSH fan-out: one step on 1/10/50 hosts ({args.servers} loopback sshd, max_parallel 50)",
        "",
        "| step | hosts | gonogo | OpenSSH floor | Ansible | gonogo / OpenSSH | gonogo / Ansible |",
        "|---|---|---|---|---|---|---|",
    ]
    for command in COMMANDS:
        for n in COUNTS:
            g, o, a = (results[tool, command, n] for tool in ("gonogo", "openssh", "ansible"))
            lines.append(
                f"| `{command}` | {n} | {fmt(g)} | {fmt(o)} | {fmt(a)} | {ratio(g, o)} | {ratio(g, a)} |"
            )
    lines += ["", "| step | tool | T(10)/T(1) | T(50)/T(1) |", "|---|---|---|---|"]
    for command in COMMANDS:
        for tool in ("gonogo", "openssh", "ansible"):
            t1, t10, t50 = (results[tool, command, n] for n in COUNTS)
            lines.append(f"| `{command}` | {tool} | {ratio(t10, t1)} | {ratio(t50, t1)} |")
    g1, g50 = results["gonogo", "sleep 1", 1], results["gonogo", "sleep 1", 50]
    o50, a50 = results["openssh", "sleep 1", 50], results["ansible", "sleep 1", 50]
    scaling = g50 / g1 if g50 and g1 else None
    vs_floor = g50 / o50 if g50 and o50 else None
    vs_ansible = g50 / a50 if g50 and a50 else None
    lines += [
        "",
        "Targets for `sleep 1` at 50 hosts: "
        f"T(50)/T(1) = {fmt_ratio(scaling)} (<= {TARGET_SCALING}x: {verdict(scaling, TARGET_SCALING)}); "
        f"vs OpenSSH = {fmt_ratio(vs_floor)} (<= {TARGET_FLOOR}x: {verdict(vs_floor, TARGET_FLOOR)}); "
        f"vs Ansible = {fmt_ratio(vs_ansible)} (<= {TARGET_ANSIBLE}x: {verdict(vs_ansible, TARGET_ANSIBLE)}).",
        "",
        f"CPU at 50 hosts (`true`, one run): gonogo {g_wall:.2f} s wall, the machine used {g_cpu:.2f} CPU-s "
        f"of {os.cpu_count()} cores x {g_wall:.2f} s (every process on the box), gonogo's own process {g_ours:.2f} CPU-s "
        f"({g_ours / 50 * 1000:.0f} ms per host, the rest is sshd and the remote shells); OpenSSH {o_wall:.2f} s "
        f"wall, {o_cpu:.2f} CPU-s. When the machine is saturated by connection set-up, T(50) - T(1) is "
        "bounded by that set-up time whatever the client does (the OpenSSH floor shows the same scaling).",
        "",
        f"Each cell: median of {args.repeats} runs (Ansible: {args.ansible_repeats}), from nothing to every host "
        "done, fresh connections each run (gonogo: new backend, handshakes bounded to 10 in flight; OpenSSH: "
        f"`xargs -P 50 ssh -o KexAlgorithms={KEX}`, no ControlMaster; Ansible: `ansible all -m command -f 50`, "
        f"same key exchange, fresh ControlPersist dir, default module transfer). Ansible: {ansible_note}. "
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()}.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    out = ROOT / "bench" / "results" / "fanout.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    return 0


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


if __name__ == "__main__":
    raise SystemExit(main())
