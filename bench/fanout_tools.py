"""The tools bench/fanout.py times, each doing the same work on the same loopback fleet.

Two workloads: `sleep 1` once on every host (fresh connections each run), and the 20-step
deploy of `tests/support/deploy20.py` (release dir, 1 MB artifact uploaded once per host, ...;
connections reused across the steps, every step a barrier across the hosts, as gonogo runs a
batch). Every tool uses the key exchange gonogo negotiates (curve25519-sha256), the same key
and known_hosts, and verifies host keys.

- gonogo: `runners.Pipeline` over `SSHBackend` (max_parallel = the fleet; handshakes bounded to
  the default 10 in flight), then `close()`; steps with a timeout, as every SSH step has.
- OpenSSH: `xargs -P N ssh` with an ssh_config of one `Host` per fleet host; for the deploy,
  `ControlMaster auto` + `ControlPersist` (one connection per host, reused by every step) and
  `scp` (SFTP protocol) for the upload; the masters are stopped at the end (timed, as gonogo's
  `close()` is).
- Ansible (ansible-core from pip, in the benches' cached venv): `ansible all -m command -f N`
  for `sleep 1`; for the deploy a playbook of the same 20 tasks (`shell`, and `copy` for the
  artifact), `-f N`, linear strategy, pipelining on (what a tuned setup uses), its own
  ControlPersist connections.

Each runner returns (wall seconds, client CPU seconds): this process's CPU for gonogo, the
finished child processes' for the others plus their ControlPersist masters' (read from /proc
just before they are stopped, since they detach).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plots import bench_venv

from runners import Host, Pipeline, Step, Strategy, render, render_path
from runners.backends.ssh import SSHBackend
from tests.support.deploy20 import Artifact, deploy_steps, deploy_variables
from tests.support.sshd import SSHFleet

KEX = "curve25519-sha256"
#: Every SSH step gonogo runs has a timeout (`step_timeout`); the bench's do too.
STEP_TIMEOUT = 120.0
Timing = tuple[float, float]


def children_cpu() -> float:
    """CPU seconds of this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_cpu(marker: str) -> float:
    """CPU seconds used so far by running processes whose command line contains `marker`."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


# -- gonogo -------------------------------------------------------------------------------------
def gonogo_sleep(fleet: SSHFleet, hosts: list[Host]) -> Timing:
    """One `sleep 1` step on every host, fresh connections, closed at the end."""
    return _gonogo(fleet, hosts, [Step("sleep", "sleep 1", timeout=STEP_TIMEOUT)], {})


def gonogo_deploy(fleet: SSHFleet, hosts: list[Host], root: Path, release: str, artifact: Artifact) -> Timing:
    """The 20-step deploy, one connection per host for all of it."""
    return _gonogo(fleet, hosts, deploy_steps(STEP_TIMEOUT), deploy_variables(root, release, artifact))


def _gonogo(fleet: SSHFleet, hosts: list[Host], steps: list[Step], variables: dict[str, object]) -> Timing:
    cpu, started = time.process_time(), time.perf_counter()
    backend = SSHBackend(fleet.options(connect_timeout=30))
    pipeline = Pipeline(backend, hosts, Strategy("parallel", max_parallel=len(hosts)), variables)
    try:
        result = pipeline.run_stage("deploy", steps)
    finally:
        pipeline.close()
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    if not result.ok:
        raise RuntimeError(f"gonogo run failed: {result.failed_step}")
    return wall, used


# -- OpenSSH ------------------------------------------------------------------------------------
class OpenSSH:
    """`ssh`/`scp` driven by `xargs -P`, with an ssh_config naming every fleet host."""

    def __init__(self, fleet: SSHFleet, work: Path) -> None:
        self.fleet = fleet
        self.work = work

    def config(self, hosts: list[Host], control: Path | None) -> Path:
        """An ssh_config for `hosts` (with connection sharing through `control` when given)."""
        lines = [f"Host {h.name}\n  HostName 127.0.0.1\n  Port {h.port}\n" for h in hosts]
        mux = (
            f"  ControlMaster auto\n  ControlPath {control}/%n\n  ControlPersist 600\n"
            if control
            else "  ControlMaster no\n"
        )
        lines.append(
            f"Host *\n  User {self.fleet.user}\n  IdentityFile {self.fleet.key}\n  IdentitiesOnly yes\n"
            f"  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {self.fleet.known_hosts}\n"
            f"  KexAlgorithms {KEX}\n  LogLevel ERROR\n" + mux
        )
        path = self.work / f"ssh_config-{len(hosts)}{'-mux' if control else ''}"
        path.write_text("".join(lines))
        return path

    def _xargs(self, argv: list[str], items: list[str], per_call: int, parallel: int) -> None:
        cmd = ["xargs", "-P", str(parallel), "-n", str(per_call), "-d", "\n", *argv]
        proc = subprocess.run(cmd, input="\n".join(items) + "\n", capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"openssh run failed: {proc.stderr[-500:]}")

    def sleep(self, hosts: list[Host]) -> Timing:
        """`xargs -P N ssh HOST sleep 1`, fresh connections."""
        config = self.config(hosts, None)
        cpu, started = children_cpu(), time.perf_counter()
        self._xargs(
            ["ssh", "-F", str(config)], [x for h in hosts for x in (h.name, "sleep 1")], 2, len(hosts)
        )
        return time.perf_counter() - started, children_cpu() - cpu

    def deploy(self, hosts: list[Host], root: Path, release: str, artifact: Artifact) -> Timing:
        """The 20 steps, each `xargs -P N` over the hosts (a barrier per step, as gonogo's batch)."""
        control = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))  # short: socket paths are limited
        config = self.config(hosts, control)
        variables = deploy_variables(root, release, artifact)
        cpu, started = children_cpu(), time.perf_counter()
        for step in deploy_steps(STEP_TIMEOUT):
            if step.upload is not None:
                items = [x for h in hosts for x in _upload_args(step, h, variables)]
                self._xargs(["scp", "-q", "-F", str(config)], items, 2, len(hosts))
            else:
                items = [
                    x for h in hosts for x in (h.name, render(step.command, {**variables, "host": h.name}))
                ]
                self._xargs(["ssh", "-F", str(config)], items, 2, len(hosts))
        masters = proc_cpu(str(control))
        self._xargs(["ssh", "-F", str(config), "-O", "exit"], [h.name for h in hosts], 1, len(hosts))
        wall = time.perf_counter() - started
        shutil.rmtree(control, ignore_errors=True)
        return wall, children_cpu() - cpu + masters


def _upload_args(step: Step, host: Host, variables: dict[str, object]) -> tuple[str, str]:
    assert step.upload is not None
    values = {**variables, "host": host.name}
    return render_path(
        step.upload.source, values
    ), f"{host.name}:{render_path(step.upload.destination, values)}"


# -- Ansible ------------------------------------------------------------------------------------
class Ansible:
    """ansible-core in the benches' cached venv, with an inventory of the fleet."""

    def __init__(self, fleet: SSHFleet, work: Path) -> None:
        self.fleet = fleet
        self.work = work
        self.bin: Path | None = None
        self.version = ""
        (work / "ansible.cfg").write_text("[defaults]\n")  # no ./ansible.cfg, no ~/.ansible.cfg

    def install(self) -> str | None:
        """Install ansible-core if needed; None when ready, else why not."""
        try:
            self.bin = bench_venv("ansible", "ansible-core").parent
            out = subprocess.run(
                [str(self.bin / "ansible"), "--version"], check=True, capture_output=True, text=True
            )
            self.version = out.stdout.splitlines()[0]
            return None
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            return f"{exc} {text[-300:]}".strip()

    def _inventory(self, hosts: list[Host]) -> Path:
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        path = self.work / f"inventory-{len(hosts)}.ini"
        lines = ["[fleet]", *(f"{h.name} ansible_host=127.0.0.1 ansible_port={h.port}" for h in hosts)]
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

    def _run(self, argv: list[str]) -> Timing:
        assert self.bin is not None
        control = Path(tempfile.mkdtemp(prefix="acp-", dir="/tmp"))
        env = {
            **os.environ,
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_LOCAL_TEMP": str(self.work / "ansible-tmp"),
            "ANSIBLE_CONFIG": str(self.work / "ansible.cfg"),
            "ANSIBLE_PIPELINING": "True",
        }
        cpu, started = children_cpu(), time.perf_counter()
        proc = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]], capture_output=True, text=True, env=env, timeout=3600
        )
        masters = proc_cpu(str(control))
        for socket_path in control.iterdir():  # its ControlPersist masters would linger for 60 s
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "bench"],
                capture_output=True,
                timeout=10,
            )
        wall = time.perf_counter() - started
        shutil.rmtree(control, ignore_errors=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ansible run failed: {proc.stdout[-800:]} {proc.stderr[-500:]}")
        return wall, children_cpu() - cpu + masters

    def sleep(self, hosts: list[Host]) -> Timing:
        """`ansible all -m command -a 'sleep 1' -f N`."""
        inventory = self._inventory(hosts)
        return self._run(
            ["ansible", "all", "-i", str(inventory), "-m", "command", "-a", "sleep 1", "-f", str(len(hosts))]
        )

    def deploy(self, hosts: list[Host], root: Path, release: str, artifact: Artifact) -> Timing:
        """The same 20 steps as a playbook (`shell` tasks, `copy` for the artifact), `-f N`."""
        variables = deploy_variables(root, release, artifact)
        me = {**variables, "host": "{{ inventory_hostname }}"}
        tasks = []
        for step in deploy_steps(STEP_TIMEOUT):
            if step.upload is not None:
                copy = {
                    "src": render_path(step.upload.source, me),
                    "dest": render_path(step.upload.destination, me),
                }
                tasks.append({"name": step.name, "ansible.builtin.copy": copy})
            else:
                tasks.append({"name": step.name, "ansible.builtin.shell": render(step.command, me)})
        playbook = self.work / f"deploy-{len(hosts)}.yml"
        playbook.write_text(json.dumps([{"hosts": "fleet", "gather_facts": False, "tasks": tasks}], indent=1))
        inventory = self._inventory(hosts)
        return self._run(["ansible-playbook", "-i", str(inventory), str(playbook), "-f", str(len(hosts))])
