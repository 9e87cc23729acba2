"""The dry-run printer prints exactly what the SSH backend runs: where each host connects, the
wrapped command line (sudo mode included), per batch and step, in host order."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from runners import Host, Pipeline, Step, Strategy, remote_command, sudo_command
from runners.backends import PrinterBackend
from runners.backends.ssh import SSHBackend, SSHPlan
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh


@pytest.fixture
def fleet(sshd_hosts: Callable[[int], SSHFleet]) -> SSHFleet:
    return sshd_hosts(3)


def printed(
    printer: PrinterBackend, hosts: list[Host], strategy: Strategy, steps: list[Step], **env: str
) -> list[str]:
    pipeline = Pipeline(printer, hosts, strategy, {"ref": "v1; x"}, env=env)
    try:
        assert pipeline.run_stage("deploy", steps).ok
    finally:
        pipeline.close()
    return printer.lines


def test_printer_shows_connections_batches_and_the_sudo_password_mode(
    fleet: SSHFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUDO_PW", "hunter2-sudo")
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host jump\n    HostName 10.0.0.1\n    User hop\n    Port 2200\n"
        "Host web-*\n    HostName 10.0.1.9\n    ProxyJump jump\n"
    )
    options = fleet.options(ssh_config=str(config), user="deploy", sudo_password_env="SUDO_PW", port=22)
    hosts = [
        Host("app1", "10.0.0.11"),
        Host("app2", "web-2", port=2222),
        Host("app3", "10.0.0.13", user="ops", gateway="gw.example:2022"),
        Host("app4", "10.0.0.14"),
        Host("app5", "10.0.0.15"),
    ]
    steps = [
        Step("migrate", "migrate {ref}", once=True, sudo=True, timeout=60),
        Step("restart", "systemctl restart app", sudo=True),
        Step("check", "curl -fsS localhost"),
    ]
    strategy = Strategy("canary", canary=1, batch_size=2, max_parallel=10)
    sudo_timed = remote_command(
        sudo_command("migrate 'v1; x'"), timeout=60, env={"TOKEN": "t"}, sudo_password=""
    )
    sudo_plain = remote_command(sudo_command("systemctl restart app"), env={"TOKEN": "t"}, sudo_password="")
    check = remote_command("curl -fsS localhost", env={"TOKEN": "t"})
    assert sudo_timed.line.startswith("sudo -S -p '' sh -c ")  # what SSH runs with a sudo password
    stdin_sudo = "    # stdin: sudo password ($SUDO_PW), TOKEN"
    expected = [
        "# stage deploy",
        "# deploy: batch 1: app1",
        "[app1] connect deploy@10.0.0.11:22",
        f"[app1] $ {sudo_timed.line}{stdin_sudo}",
        f"[app1] $ {sudo_plain.line}{stdin_sudo}",
        f"[app1] $ {check.line}    # stdin: TOKEN",
        "# deploy: batch 2: app2, app3",
        "[app2] connect deploy@10.0.1.9:2222 via hop@10.0.0.1:2200",
        f"[app2] $ {sudo_plain.line}{stdin_sudo}",
        "[app3] connect ops@10.0.0.13:22 via deploy@gw.example:2022",
        f"[app3] $ {sudo_plain.line}{stdin_sudo}",
        f"[app2] $ {check.line}    # stdin: TOKEN",
        f"[app3] $ {check.line}    # stdin: TOKEN",
        "# deploy: batch 3: app4, app5",
        "[app4] connect deploy@10.0.0.14:22",
        f"[app4] $ {sudo_plain.line}{stdin_sudo}",
        "[app5] connect deploy@10.0.0.15:22",
        f"[app5] $ {sudo_plain.line}{stdin_sudo}",
        f"[app4] $ {check.line}    # stdin: TOKEN",
        f"[app5] $ {check.line}    # stdin: TOKEN",
    ]
    for _ in range(10):  # parallel hosts finish in any order; the print order never changes
        lines = printed(PrinterBackend(plan=SSHPlan(options)), hosts, strategy, steps, TOKEN="t")
        assert lines == expected
        assert not any("hunter2" in line for line in lines)  # the password itself never


def test_printer_without_a_sudo_password_prints_sudo_n(fleet: SSHFleet) -> None:
    lines = printed(
        PrinterBackend(plan=SSHPlan(fleet.options())),
        [fleet.host("app1")],
        Strategy(),
        [Step("restart", "systemctl restart app", sudo=True)],
    )
    assert lines[-1] == "[app1] $ sudo -n sh -c 'systemctl restart app'"


def test_the_printed_command_line_is_the_one_sshd_runs(fleet: SSHFleet) -> None:
    # The command prints its own shell's command line (as sshd passed it to the login shell).
    step = Step("self", "tr '\\000' '\\n' < /proc/$$/cmdline | tail -n 1; echo {ref}")
    options = fleet.options()
    host = fleet.host("app1")
    printer = PrinterBackend(plan=SSHPlan(options))
    [*_, connect, line] = printed(printer, [host], Strategy(), [step], TOKEN="s3cret-t0ken")
    pipeline = Pipeline(
        SSHBackend(options), [host], Strategy(), {"ref": "v1; x"}, env={"TOKEN": "s3cret-t0ken"}
    )
    try:
        result = pipeline.run_stage("deploy", [step])
    finally:
        pipeline.close()
    assert result.ok, result.failed_step
    ran, echoed = result.steps[0].hosts[0].output.splitlines()
    assert line == f"[app1] $ {ran}    # stdin: TOKEN"
    assert echoed == "v1; x"
    assert connect == f"[app1] connect {fleet.user}@127.0.0.1:{host.port}"
    assert shlex.split(ran)[0] == "eval"  # the secrets loader, not the secret
