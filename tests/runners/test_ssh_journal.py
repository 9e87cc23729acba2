"""The step journal on real sshd: what the host records, no second run of a step, a step that
outlives its connection (reattached), stopping a step's process group, an unwritable journal,
a pid reused after a reboot."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runners import Host, HostResult, Pipeline, StageResult, Step, Strategy
from runners.backends.ssh import SSHBackend, SSHOptions
from runners.journal import UNSURE, JournalState
from tests.support.sshd import SSHFleet, TCPProxy

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh


@pytest.fixture
def fleet(sshd_hosts: Callable[[int], SSHFleet]) -> SSHFleet:
    return sshd_hosts(1)


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def pipeline_for(
    fleet: SSHFleet, root: Path, *, host: Host | None = None, options: SSHOptions | None = None
) -> Pipeline:
    backend = SSHBackend(options or fleet.options())
    backend.journal_root = str(root)
    return Pipeline(backend, [host or fleet.host("app1")], Strategy(), {}, journal="7")


def run_one(pipeline: Pipeline, step: Step) -> HostResult:
    try:
        result = pipeline.run_stage("deploy", [step])
    finally:
        pipeline.close()
    [host_result] = result.steps[0].hosts
    return host_result


def test_the_host_records_the_step(fleet: SSHFleet, tmp_path: Path) -> None:
    result = run_one(pipeline_for(fleet, tmp_path), Step("say", "echo out; echo err >&2; exit 3"))
    assert result.status == "failed" and result.exit_code == 3, result
    assert result.output == "out\nerr\n"
    step = tmp_path / "7" / "app1" / "deploy.b0.s0.say"
    pid, began, boot = (step / "started").read_text().split()
    assert int(pid) > 1 and int(began) > 0
    assert boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip()  # tells a reboot
    code, how, _ = (step / "exit").read_text().split()
    assert (code, how) == ("3", "exit")
    assert (step / "output").read_text() == "out\nerr\n"
    assert not (step / "in").exists()  # the stdin FIFO is gone once the step has read it


def test_a_step_that_ran_is_never_run_again(fleet: SSHFleet, tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    step = Step("count", f"echo run >> {marker}; echo hello; exit 4")
    first = run_one(pipeline_for(fleet, tmp_path / "j"), step)
    second = run_one(pipeline_for(fleet, tmp_path / "j"), step)  # a new process, the same journal
    assert marker.read_text() == "run\n"
    assert (first.exit_code, first.output) == (second.exit_code, second.output) == (4, "hello\n")
    # Another deployment (another journal name) runs it.
    backend = SSHBackend(fleet.options())
    backend.journal_root = str(tmp_path / "j")
    other = Pipeline(backend, [fleet.host("app1")], Strategy(), {}, journal="8")
    assert run_one(other, step).exit_code == 4
    assert marker.read_text() == "run\nrun\n"


def test_a_step_outlives_its_connection_and_is_reattached(fleet: SSHFleet, tmp_path: Path) -> None:
    server = fleet.servers[0]
    proxy = TCPProxy(server.port)
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line().replace(f":{server.port} ", f":{proxy.port} ") + "\n")
    marker = tmp_path / "runs"
    step = Step("slow", f"echo begun; sleep 6; echo run >> {marker}; echo finished")
    journal = tmp_path / "j" / "7" / "app1" / "deploy.b0.s0.slow"
    options = fleet.options(known_hosts=str(known), keepalive=1, keepalive_count_max=2)
    try:
        cut = pipeline_for(
            fleet, tmp_path / "j", host=Host("app1", "127.0.0.1", port=proxy.port), options=options
        )
        out: dict[str, HostResult] = {}
        thread = threading.Thread(target=lambda: out.update(r=run_one(cut, step)), daemon=True)
        thread.start()
        wait_for(lambda: (journal / "started").exists())
        proxy.freeze()  # the network goes away mid-step
        thread.join(60)
        assert out["r"].status == "error" and "stopped answering" in (out["r"].error or ""), out["r"]
        assert not (journal / "exit").exists(), "the step should still be running on the host"
        # The bot comes back (directly, not through the dead network) while the step still runs.
        again = run_one(pipeline_for(fleet, tmp_path / "j"), step)
    finally:
        proxy.close()
    assert again.ok, again
    assert again.output == "begun\nfinished\n"
    assert marker.read_text() == "run\n"


def pgid_members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def sleepers(pgid: int) -> int:
    """`sleep 100` processes in the group `pgid`."""
    count = 0
    for pid in pgid_members(pgid):
        try:
            count += Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00100\x00"
        except OSError:
            pass
    return count


def test_stop_ends_the_steps_process_group(fleet: SSHFleet, tmp_path: Path) -> None:
    pipeline = pipeline_for(fleet, tmp_path)
    journal = tmp_path / "7" / "app1" / "deploy.b0.s0.linger"
    out: dict[str, StageResult] = {}
    step = Step("linger", "sleep 100 & trap '' TERM; sleep 100; sleep 100")  # ignores TERM: KILL it is
    thread = threading.Thread(target=lambda: out.update(r=pipeline.run_stage("deploy", [step])), daemon=True)
    thread.start()
    try:
        wait_for(lambda: (journal / "started").exists())
        pgid = int((journal / "started").read_text().split()[0])
        wait_for(lambda: sleepers(pgid) == 2)  # both sleeps: the TERM trap is set by then
        session = pipeline._session(fleet.host("app1"))
        assert session.journal_state("7/deploy.b0.s0.linger").state == "running"
        assert session.stop("7/deploy.b0.s0.linger") == "killed"
        thread.join(60)
        assert not thread.is_alive()
        [host] = out["r"].steps[0].hosts
        assert host.status == "failed" and "the step was given up and stopped" in host.output, host
        assert pgid_members(pgid) == []
        # Its record is set aside (a step given up on did not finish): the name reads as never run.
        assert session.journal_state("7/deploy.b0.s0.linger") == JournalState("absent")
        [aside] = journal.parent.glob("deploy.b0.s0.linger.given-up.*")
        code, how, _ = (aside / "exit").read_text().split()
        assert (code, how) == ("137", "signal")
        assert session.journal_state("7/deploy.b0.s0.never") == JournalState("absent")
    finally:
        pipeline.close()


def test_an_unwritable_journal_is_a_clear_error(fleet: SSHFleet, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"  # the journal's parent is a file: nothing can be made below it
    blocked.write_text("")
    result = run_one(pipeline_for(fleet, blocked / "journal"), Step("x", f"touch {tmp_path}/ran"))
    assert result.status == "error", result
    assert result.describe().startswith("app1: cannot write the step journal "), result
    assert result.describe().endswith("(read-only or full disk?)"), result
    assert not (tmp_path / "ran").exists()


def test_a_step_the_host_lost_is_not_run_again_without_a_human(fleet: SSHFleet, tmp_path: Path) -> None:
    # The step started, then its processes died with no exit recorded (the host restarted).
    marker = tmp_path / "runs"
    step = Step("migrate", f"echo run >> {marker}; sleep 100")
    journal = tmp_path / "7" / "app1" / "deploy.b0.s0.migrate"
    first = pipeline_for(fleet, tmp_path)
    thread = threading.Thread(target=lambda: run_one(first, step), daemon=True)
    thread.start()
    wait_for(lambda: marker.exists() and (journal / "started").exists())
    pgid = int((journal / "started").read_text().split()[0])
    wait_for(lambda: sleepers(pgid) == 1)
    os.killpg(pgid, 9)  # as a reboot would: no exit recorded
    thread.join(60)
    unsure = {"7/deploy.b0.s0.migrate": ("app1",)}
    backend = SSHBackend(fleet.options())
    backend.journal_root = str(tmp_path)
    resumed = Pipeline(backend, [fleet.host("app1")], Strategy(), {}, journal="7", unsure=unsure)
    refused = run_one(resumed, step)
    assert refused.status == "error" and (refused.error or "").startswith(UNSURE), refused
    assert "the host lost it" in (refused.error or "")
    assert marker.read_text() == "run\n"  # not run again
    backend = SSHBackend(fleet.options())
    backend.journal_root = str(tmp_path)
    allowed = Pipeline(
        backend,
        [fleet.host("app1")],
        Strategy(),
        {},
        journal="7",
        unsure=unsure,
        rerun=["7/deploy.b0.s0.migrate"],
    )
    thread = threading.Thread(target=lambda: run_one(allowed, step), daemon=True)
    thread.start()
    wait_for(lambda: marker.read_text() == "run\nrun\n")  # a human said so: it runs again
    allowed.stop_running()
    thread.join(60)


def test_journals_are_pruned_as_releases_are(fleet: SSHFleet, tmp_path: Path) -> None:
    root = tmp_path / "j"
    for deployment in ("1-100", "2-200", "3-300", "10-400"):
        backend = SSHBackend(fleet.options())
        backend.journal_root, backend.journal_keep = str(root), 2
        pipeline = Pipeline(backend, [fleet.host("app1")], Strategy(), {}, journal=deployment)
        assert run_one(pipeline, Step("s", "true")).ok
    # The newest two deployments (in id order: 10 is newer than 3) keep their journals.
    assert sorted(p.name for p in root.iterdir()) == ["10-400", "3-300"]


def test_a_pid_reused_after_a_reboot_is_not_taken_for_the_step(fleet: SSHFleet, tmp_path: Path) -> None:
    # The journal says the step started in another boot, as pid N; after the reboot, N is an
    # unrelated process that happens to be alive.
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        journal = tmp_path / "7" / "app1" / "deploy.b0.s0.migrate"
        journal.mkdir(parents=True)
        (journal / "output").write_text("half of it\n")
        (journal / "started").write_text(f"{bystander.pid} 1700000000 00000000-0000-0000-0000-000000000000\n")
        backend = SSHBackend(fleet.options())
        backend.journal_root = str(tmp_path)
        session = backend.open(fleet.host("app1"))
        try:
            state = session.journal_state("7/deploy.b0.s0.migrate")
            assert state == JournalState("lost", pid=bystander.pid, at=1700000000)
            assert session.stop("7/deploy.b0.s0.migrate") == "not running (host restarted?)"
        finally:
            backend.close()
        assert bystander.poll() is None  # the bystander was not signalled
        assert not journal.exists()  # the lost record was set aside
    finally:
        bystander.kill()
        bystander.wait()


def test_a_once_step_is_journaled_on_its_one_host(fleet: SSHFleet, tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    step = Step("migrate", f"echo run >> {marker}", once=True)
    for _ in range(2):  # the second time, as a Resume would: the same journal name
        backend = SSHBackend(fleet.options())
        backend.journal_root = str(tmp_path / "j")
        pipeline = Pipeline(backend, [fleet.host("app1"), fleet.host("app2")], Strategy(), {}, journal="7")
        try:
            result = pipeline.run_stage("deploy", [step])
        finally:
            pipeline.close()
        assert [h.host for h in result.steps[0].hosts] == ["app1"] and result.steps[0].ok
    assert marker.read_text() == "run\n"  # once, on one host, ever
    assert [p.name for p in (tmp_path / "j" / "7").iterdir()] == ["app1"]
