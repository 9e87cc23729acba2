"""Fan-out benchmark: one step on 1, 10 and 50 hosts over SSH, gonogo vs its baselines.

    python bench/fanout.py [--servers 10] [--repeats 5] [--ansible-repeats 3] [--no-ansible]
                           [--sshd-reexec] [--no-reexec-check]

Starts `--servers` loopback sshd processes (tests/sshd.py: own host keys, MaxStartups raised,
clean HOME so no .bashrc runs; by default with `-r`, no re-exec per connection, which costs
about a quarter less server CPU; the same servers for every tool) and spreads 50 host entries
over them. For `true` and `sleep 1` on 1, 10 and 50 hosts it times, each time from nothing to
all hosts done (fresh connections), in the same run:

- gonogo: `Pipeline(SSHBackend(...), hosts, Strategy("parallel", max_parallel=len(hosts)))`, one stage,
  then `close()` (handshakes bounded to 10 in flight);
- plain Fabric: `ThreadingGroup(...).run(cmd)` (a thread per host, no bound, Fabric defaults:
  the issue's "plain Fabric" baseline);
- raw paramiko: a thread per host, `SSHClient.connect` + `exec_command`, no bound (the floor for a
  paramiko client);
- the OpenSSH floor: `xargs -P 50 ssh -o KexAlgorithms=curve25519-sha256 -o BatchMode=yes ...`
  (same key, same known_hosts);
- Ansible ad-hoc: `ansible all -m command -a CMD -f 50` from ansible-core installed with pip
  into a cached venv (`$XDG_CACHE_HOME/gonogo-bench/ansible`, else `~/.cache/...`); same key,
  known_hosts and key exchange, a fresh ControlPersist directory per run. 'n/a' when it cannot
  be installed.

Every tool uses the same key exchange, curve25519-sha256 (paramiko's preference is pinned to
it for the paramiko-based tools; OpenSSH and Ansible get `-o KexAlgorithms`); the negotiated one
is printed per tool. Runs are interleaved (each repeat runs every tool, in a rotating order) so
a change in machine load hits every tool alike; cells are medians. The 1-minute load average is
recorded before and after, with a warning when it was above half the cores before the run
(other work on the machine skews every figure: rerun on a quiet machine).

Prints a markdown table and writes it to bench/results/fanout.md. Targets for `sleep 1` at
50 hosts: T(50)/T(1) <= 2.0, <= 1.3x the OpenSSH floor, <= 0.2x Ansible.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paramiko  # noqa: E402

from runners import Host, Pipeline, Step, Strategy  # noqa: E402
from runners.backends.ssh import PARAMIKO_LOGGER, SSHBackend  # noqa: E402
from tests.support.sshd import SSHFleet, start_fleet  # noqa: E402

COUNTS = (1, 10, 50)
COMMANDS = ("true", "sleep 1")
KEX = "curve25519-sha256"
#: paramiko's name for the same key exchange (the pre-RFC 8731 alias OpenSSH also accepts).
PARAMIKO_KEX = "curve25519-sha256@libssh.org"
TARGET_SCALING, TARGET_FLOOR, TARGET_ANSIBLE = 2.0, 1.3, 0.2
TOOLS = ("gonogo", "fabric", "paramiko", "openssh", "ansible")
LABELS = {
    "gonogo": "gonogo",
    "fabric": "plain Fabric",
    "paramiko": "raw paramiko",
    "openssh": "OpenSSH floor",
    "ansible": "Ansible",
}

Runner = Callable[[list[Host], str], float]


def pin_paramiko_kex() -> None:
    """Make every paramiko client in this process offer only curve25519-sha256."""
    paramiko.Transport._preferred_kex = (PARAMIKO_KEX,)


# -- the tools ----------------------------------------------------------------------------------


def time_gonogo(fleet: SSHFleet, hosts: list[Host], command: str) -> float:
    """Wall time of one stage with one step on `hosts`, fresh connections, closed at the end."""
    started = time.perf_counter()
    backend = SSHBackend(fleet.options(connect_timeout=10, max_handshakes=10))
    pipeline = Pipeline(backend, hosts, Strategy("parallel", max_parallel=len(hosts)), {})
    try:
        result = pipeline.run_stage("deploy", [Step("bench", command)])
    finally:
        pipeline.close()
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"gonogo run failed: {result.failed_step}")
    return elapsed


def time_fabric(fleet: SSHFleet, hosts: list[Host], command: str) -> float:
    """Wall time of plain Fabric: `ThreadingGroup(...).run(command)`, then `close()`."""
    from fabric import ThreadingGroup

    started = time.perf_counter()
    group = ThreadingGroup(
        *(f"127.0.0.1:{h.port}" for h in hosts),
        user=fleet.user,
        connect_kwargs={"key_filename": str(fleet.key), "allow_agent": False, "look_for_keys": False},
    )
    try:
        results = group.run(command, hide=True, warn=True)
    finally:
        group.close()
    elapsed = time.perf_counter() - started
    bad = [r for r in results.values() if getattr(r, "exited", 1) != 0]
    if bad or results.failed:
        raise RuntimeError(f"fabric run failed: {bad or results.failed}")
    return elapsed


def time_paramiko(fleet: SSHFleet, hosts: list[Host], command: str) -> float:
    """Wall time of raw paramiko: one thread per host, connect, exec, read, exit status, close."""
    started = time.perf_counter()
    pkey = paramiko.PKey.from_path(str(fleet.key))
    errors: list[BaseException] = []

    def one(host: Host) -> None:
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(str(fleet.known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(
                "127.0.0.1",
                port=host.port or 22,
                username=fleet.user,
                pkey=pkey,
                allow_agent=False,
                look_for_keys=False,
                timeout=10,
            )
            _, stdout, _ = client.exec_command(command)
            stdout.read()
            if stdout.channel.recv_exit_status() != 0:
                raise RuntimeError(f"{host.name}: non-zero exit")
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"paramiko run failed: {errors[:3]}")
    return elapsed


def ssh_argv(fleet: SSHFleet) -> list[str]:
    return [
        "ssh", "-F", "/dev/null", "-o", f"KexAlgorithms={KEX}", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={fleet.known_hosts}", "-o", "ControlMaster=no",
        "-i", str(fleet.key), "-l", fleet.user,
    ]  # fmt: skip


def time_openssh(fleet: SSHFleet, hosts: list[Host], command: str) -> float:
    """Wall time of `xargs -P 50 ssh ...`, one ssh process per host entry."""
    ports = "".join(f"{h.port}\n" for h in hosts)
    argv = ["xargs", "-P", str(len(hosts)), "-I", "{}", *ssh_argv(fleet), "-p", "{}", "127.0.0.1", command]
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
        """Install ansible-core if needed (pip, into the bench's own venv); None when ready."""
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


# -- hygiene: key exchange, load, CPU -----------------------------------------------------------


class _KexCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Kex: "):
            self.found.append(message.removeprefix("Kex: ").strip())


def paramiko_kex(logger: str, connect: Callable[[], None]) -> str:
    """The key exchange a paramiko-based client negotiates (read from paramiko's debug log)."""
    catcher = _KexCatcher()
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(catcher)
    log.setLevel(logging.DEBUG)
    try:
        connect()
    finally:
        log.removeHandler(catcher)
        log.setLevel(level)
    return catcher.found[0] if catcher.found else "unknown"


def openssh_kex(fleet: SSHFleet, host: Host) -> str:
    """The key exchange `ssh` negotiates with these options (from `ssh -v`)."""
    argv = [*ssh_argv(fleet), "-v", "-p", str(host.port), "127.0.0.1", "true"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    match = re.search(r"kex: algorithm: (\S+)", proc.stderr)
    return match.group(1) if match else "unknown"


def negotiated_kex(fleet: SSHFleet, host: Host) -> dict[str, str]:
    """Key exchange per tool, from one probe connection each."""
    found = {
        "gonogo": paramiko_kex(PARAMIKO_LOGGER, lambda: time_gonogo(fleet, [host], "true") and None),
        "fabric": paramiko_kex("paramiko.transport", lambda: time_fabric(fleet, [host], "true") and None),
        "paramiko": paramiko_kex("paramiko.transport", lambda: time_paramiko(fleet, [host], "true") and None),
        "openssh": openssh_kex(fleet, host),
    }
    found["ansible"] = f"{found['openssh']} (ssh with the same options)"
    return found


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def machine_cpu() -> float | None:
    """CPU seconds used so far by every process on this machine (Linux /proc/stat), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    """CPU seconds of this process and its finished children (ssh, xargs, ansible)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def cpu_during(run: Runner, hosts: list[Host], command: str) -> tuple[float, float, float]:
    """(wall, machine CPU, client CPU) of one run."""
    machine, ours = machine_cpu(), client_cpu()
    wall = run(hosts, command)
    after = machine_cpu()
    used = after - machine if after is not None and machine is not None else float("nan")
    return wall, used, client_cpu() - ours


# -- running ------------------------------------------------------------------------------------


def measure(
    runners: dict[str, Runner],
    hosts: list[Host],
    repeats: int,
    *,
    ansible_repeats: int,
    cells: list[tuple[str, int]],
) -> dict[tuple[str, str, int], float | None]:
    """Median wall time per (tool, command, count); every repeat runs every tool (rotating order)."""
    samples: dict[tuple[str, str, int], list[float]] = {}
    names = list(runners)
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for command, n in cells:
            for tool in order:
                if tool == "ansible" and rep >= ansible_repeats:
                    continue
                samples.setdefault((tool, command, n), []).append(runners[tool](hosts[:n], command))
        print(f"repeat {rep + 1}/{repeats} done, load {load():.2f}", file=sys.stderr)
    results: dict[tuple[str, str, int], float | None] = {}
    for command, n in cells:
        for tool in TOOLS:
            values = samples.get((tool, command, n))
            results[tool, command, n] = statistics.median(values) if values else None
    return results


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
    parser.add_argument("--repeats", type=int, default=5, help="runs per cell (median)")
    parser.add_argument("--ansible-repeats", type=int, default=3)
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument(
        "--sshd-reexec", action="store_true", help="start sshd without -r (re-exec per connection)"
    )
    parser.add_argument(
        "--no-reexec-check", action="store_true", help="skip the `sleep 1` cross-check on re-exec'ing sshd"
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    pin_paramiko_kex()

    load_before = load()
    if load_before > cores / 2:
        print(
            f"WARNING: load average {load_before:.2f} is above half the {cores} cores before the run: "
            "other work on this machine will skew the figures; rerun when it is quiet",
            file=sys.stderr,
        )
    work = Path(tempfile.mkdtemp(prefix="gonogo-fanout-"))
    fleet = start_fleet(args.servers, work / "fleet", reexec=args.sshd_reexec)
    cross: dict[tuple[str, str, int], float | None] = {}
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
        runners: dict[str, Runner] = {
            "gonogo": functools.partial(time_gonogo, fleet),
            "fabric": functools.partial(time_fabric, fleet),
            "paramiko": functools.partial(time_paramiko, fleet),
            "openssh": functools.partial(time_openssh, fleet),
        }
        if ansible is not None:
            runners["ansible"] = ansible.time
        kex = negotiated_kex(fleet, hosts[0])
        print(f"negotiated key exchange: {kex}", file=sys.stderr)
        # Warm-up: imports, first connections, page cache for ssh and sshd.
        for tool in ("gonogo", "fabric", "paramiko", "openssh"):
            runners[tool](hosts[:10], "true")
        cells = [(command, n) for command in COMMANDS for n in COUNTS]
        results = measure(runners, hosts, args.repeats, ansible_repeats=args.ansible_repeats, cells=cells)
        # Where the CPU goes at 50 hosts (`true`: the connection work alone), one run each.
        cpu = {
            tool: cpu_during(runners[tool], hosts, "true")
            for tool in ("gonogo", "fabric", "paramiko", "openssh")
        }
    finally:
        fleet.stop()
    if not args.sshd_reexec and not args.no_reexec_check:
        # The same `sleep 1` cells on sshd as it runs by default (re-exec per connection).
        print("cross-check on re-exec'ing sshd...", file=sys.stderr)
        fleet = start_fleet(args.servers, work / "fleet-reexec", reexec=True)
        try:
            hosts = fleet.hosts(max(COUNTS))
            plain: dict[str, Runner] = {
                "gonogo": functools.partial(time_gonogo, fleet),
                "fabric": functools.partial(time_fabric, fleet),
                "paramiko": functools.partial(time_paramiko, fleet),
                "openssh": functools.partial(time_openssh, fleet),
            }
            for tool in plain:
                plain[tool](hosts[:10], "true")
            cross = measure(
                plain, hosts, args.repeats, ansible_repeats=0, cells=[("sleep 1", 1), ("sleep 1", 50)]
            )
        finally:
            fleet.stop()
    shutil.rmtree(work, ignore_errors=True)
    load_after = load()

    sshd_mode = "re-exec per connection (sshd default)" if args.sshd_reexec else "`sshd -r` (no re-exec)"
    lines = [
        f"## SSH fan-out: one step on 1/10/50 hosts ({args.servers} loopback sshd, {sshd_mode}, max_parallel 50)",
        "",
        "| step | hosts | gonogo | plain Fabric | raw paramiko | OpenSSH floor | Ansible "
        "| gonogo / Fabric | gonogo / OpenSSH | gonogo / Ansible |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for command in COMMANDS:
        for n in COUNTS:
            g, f, p, o, a = (results[tool, command, n] for tool in TOOLS)
            lines.append(
                f"| `{command}` | {n} | {fmt(g)} | {fmt(f)} | {fmt(p)} | {fmt(o)} | {fmt(a)} "
                f"| {ratio(g, f)} | {ratio(g, o)} | {ratio(g, a)} |"
            )
    lines += ["", "| step | tool | T(10)/T(1) | T(50)/T(1) |", "|---|---|---|---|"]
    for command in COMMANDS:
        for tool in TOOLS:
            t1, t10, t50 = (results[tool, command, n] for n in COUNTS)
            lines.append(f"| `{command}` | {LABELS[tool]} | {ratio(t10, t1)} | {ratio(t50, t1)} |")
    g1, g50 = results["gonogo", "sleep 1", 1], results["gonogo", "sleep 1", 50]
    f1, f50 = results["fabric", "sleep 1", 1], results["fabric", "sleep 1", 50]
    o50, a50 = results["openssh", "sleep 1", 50], results["ansible", "sleep 1", 50]
    scaling = g50 / g1 if g50 and g1 else None
    vs_floor = g50 / o50 if g50 and o50 else None
    vs_ansible = g50 / a50 if g50 and a50 else None
    lines += [
        "",
        "Targets for `sleep 1` at 50 hosts: "
        f"T(50)/T(1) = {fmt_ratio(scaling)} (<= {TARGET_SCALING}x: {verdict(scaling, TARGET_SCALING)}; "
        f"plain Fabric in the same run: {ratio(f50, f1)}); "
        f"vs OpenSSH = {fmt_ratio(vs_floor)} (<= {TARGET_FLOOR}x: {verdict(vs_floor, TARGET_FLOOR)}); "
        f"vs Ansible = {fmt_ratio(vs_ansible)} (<= {TARGET_ANSIBLE}x: {verdict(vs_ansible, TARGET_ANSIBLE)}).",
        "",
        "CPU at 50 hosts (`true`, one run each; machine = every process on the box, sshd and remote "
        f"shells included, {cores} cores; client = the tool's own processes):",
        "",
        "| tool | wall | machine CPU | client CPU | client CPU per host |",
        "|---|---|---|---|---|",
    ]
    for tool, (wall, machine, client) in cpu.items():
        lines.append(
            f"| {LABELS[tool]} | {wall:.2f} s | {machine:.2f} s | {client:.2f} s | {client / 50 * 1000:.1f} ms |"
        )
    if cross:
        c = {
            tool: (cross[tool, "sleep 1", 1], cross[tool, "sleep 1", 50])
            for tool in ("gonogo", "fabric", "paramiko", "openssh")
        }
        lines += [
            "",
            "Cross-check, `sleep 1` on sshd as it runs by default (re-exec per connection, more server CPU "
            "on the same 2 cores), T(1) / T(50) / T(50)/T(1): "
            + "; ".join(
                f"{LABELS[t]} {fmt(v1)} / {fmt(v50)} / {ratio(v50, v1)}" for t, (v1, v50) in c.items()
            )
            + f"; gonogo / OpenSSH at 50: {ratio(c['gonogo'][1], c['openssh'][1])}.",
        ]
    warn = " (above half the cores: figures skewed by other work)" if load_before > cores / 2 else ""
    lines += [
        "",
        f"Each cell: median of {args.repeats} runs (Ansible: {args.ansible_repeats}), interleaved across tools, "
        "from nothing to every host done, fresh connections each run. Key exchange negotiated: "
        + ", ".join(f"{LABELS[t]} {kex.get(t, 'n/a')}" for t in TOOLS)
        + f". Ansible: {ansible_note} (`ansible all -m command -f 50`, fresh ControlPersist dir, default module "
        f"transfer). Load average (1 min): {load_before:.2f} before{warn}, {load_after:.2f} after (the after "
        f"figure includes this benchmark's own load). Machine: {cores} cores, Python {sys.version.split()[0]}, "
        f"paramiko {paramiko.__version__}, "
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
