"""Steps that outlive the bot, over real sshd and both stores: a shutdown grace that runs out
stops the remote step (and the bot exits, and writes nothing more); a bot SIGKILLed mid-step
leaves the step finishing on the host, and Resume records it from the host's journal instead of
running it again, also after the host restarted; a step the host cannot account for (its journal
gone, or the host rebooted mid-step) runs again only when a human presses Run it again."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.domain.deployment import State
from bot.domain.details import Cursor
from bot.store import open_store
from tests.support.bot_process import kill_bot, shut_down_bot, start_bot
from tests.support.engines import make_engine, wait_for
from tests.support.recording import RecordingChat
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh

CONFIG = """
[bot]
data_dir = "{data}"
heartbeat_interval = "0.2s"
[ssh]
user = "{user}"
identity_file = "{key}"
known_hosts = "{known_hosts}"
ssh_config = "{ssh_config}"
connect_timeout = "5s"
[environments.prod]
backend = "ssh"
hosts = [{hosts}]
deploy_to = "{data}/srv"
[environments.prod.strategy]
kind = "sequential"
[[environments.prod.steps.deploy]]
name = "migrate"
run = "echo start {{host}} >> {data}/runs; if [ {{host}} = app1 ] && [ -e {data}/slow ]; then sleep {sleep}; fi; echo end {{host}} >> {data}/runs; [ ! -e {data}/fail ]"
"""


def config_text(tmp_path: Path, fleet: SSHFleet, sleep: int) -> str:
    hosts = ", ".join(
        f'{{ name = "{h.name}", address = "{h.address}", port = {h.port} }}' for h in fleet.hosts(2)
    )
    return CONFIG.format(
        data=tmp_path,
        user=fleet.user,
        key=fleet.key,
        known_hosts=fleet.known_hosts,
        ssh_config=fleet.root / "ssh_config",
        hosts=hosts,
        sleep=sleep,
    )


def runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "runs"
    return path.read_text().splitlines() if path.exists() else []


def step_processes(tmp_path: Path) -> list[int]:
    """Processes still running the slow step (their command line names this test's runs file)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                line = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if f"{tmp_path}/runs".encode() in line and b"gonogo-step" not in line:
                found.append(int(entry))
    return found


def resume(tmp_path: Path, text: str, store_url: str) -> tuple[State, list[str]]:
    """A new bot process: finds the run interrupted (or interrupts it), resumes it."""
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    engine = make_engine(config, open_store(store_url), RecordingChat())
    try:
        d = engine.store.deployments("prod")[0]
        if d.state == State.RUNNING:
            time.sleep(1.2)  # the dead process's heartbeat goes stale (3 x 0.2 s, at least 1 s)
        engine.start()
        wait_for(lambda: engine.deployment(d.id).state == State.INTERRUPTED, 30, "interrupted")
        engine.resume("bob", d.id)
        engine.wait_idle(90)
        done = engine.deployment(d.id)
        return done.state, [f"{r['host']} {r['status']}" for r in engine.store.host_results(d.id)]
    finally:
        engine.shutdown()
        engine.store.close()


def test_a_grace_that_runs_out_stops_the_remote_step(
    tmp_path: Path, store_url: str, sshd_hosts: Callable[[int], SSHFleet]
) -> None:
    fleet = sshd_hosts(1)
    text = config_text(tmp_path, fleet, sleep=120)
    (tmp_path / "slow").touch()
    child = start_bot(tmp_path, text, store_url, GONOGO_SHUTDOWN_GRACE="1")
    try:
        wait_for(lambda: runs(tmp_path) == ["start app1"], 60, "app1's step started")
        wait_for(lambda: step_processes(tmp_path), 30, "the step's processes")
    except BaseException:
        kill_bot(child)
        raise
    shut_down_bot(child)  # the step would take 120 s: the bot stops it and exits long before
    wait_for(lambda: not step_processes(tmp_path), 30, "the remote step stopped")
    assert runs(tmp_path) == ["start app1"]  # it never got to its end
    store = open_store(store_url)
    try:
        [d] = store.deployments("prod")
        assert d.state == State.INTERRUPTED
        assert "given up and stopped on the host (app1: " in (d.error or ""), d.error
        assert d.details.cursor == Cursor("deploy", 0, 0)  # the stopped step is still to do
        assert store.host_results(d.id) == []  # nothing was written for it after the interruption
    finally:
        store.close()
    (tmp_path / "slow").unlink()
    state, results = resume(tmp_path, text, store_url)
    assert state == State.SUCCEEDED
    # The resume ran app1's step once (the stopped attempt did not count), then app2's.
    assert runs(tmp_path) == ["start app1", "start app1", "end app1", "start app2", "end app2"]
    assert results == ["app1 ok", "app2 ok"]


def kill_the_bot_mid_step(tmp_path: Path, store_url: str, fleet: SSHFleet, *, sleep: int = 3) -> str:
    """A bot in its own process deploys; it is SIGKILLed while app1's `sleep` s step runs, and
    the step goes on on the host with no bot alive (with the default, it finishes before this
    returns). The config's text, for the next bot."""
    text = config_text(tmp_path, fleet, sleep=sleep)
    (tmp_path / "slow").touch()
    child = start_bot(tmp_path, text, store_url)
    try:
        wait_for(lambda: runs(tmp_path) == ["start app1"], 60, "app1's step started")
        wait_for(lambda: step_processes(tmp_path), 30, "the step's processes")
    finally:
        kill_bot(child)  # the bot dies; the step on the host does not
    if sleep <= 3:
        wait_for(lambda: runs(tmp_path) == ["start app1", "end app1"], 60, "the step finished on the host")
        wait_for(lambda: list(journals(tmp_path).glob("*/app1/*/exit")), 30, "the host recorded its exit")
    return text


def journals(tmp_path: Path) -> Path:
    """Where the (one) host keeps its step journals: under deploy_to."""
    return tmp_path / "srv" / ".gonogo" / "journal"


def reboot(tmp_path: Path, fleet: SSHFleet) -> None:
    """The host restarts: sshd goes down, every process of the step dies where it stands (no
    exit recorded), and sshd comes back on the same address with the same host key. The
    journal, on disk, stays."""
    server = fleet.servers[0]
    server.stop()
    for pid in step_processes(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for path in journals(tmp_path).glob("*/*/*/started"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(path.read_text().split()[0]), signal.SIGKILL)  # the wrapper's session too
    wait_for(lambda: not step_processes(tmp_path), 30, "the step's processes died")
    server.restart()


def test_after_sigkill_resume_records_the_step_from_the_journal(
    tmp_path: Path, store_url: str, sshd_hosts: Callable[[int], SSHFleet]
) -> None:
    text = kill_the_bot_mid_step(tmp_path, store_url, sshd_hosts(1))
    state, results = resume(tmp_path, text, store_url)
    assert state == State.SUCCEEDED
    # app1's step ran once: the resume read its outcome from the host's journal.
    assert runs(tmp_path) == ["start app1", "end app1", "start app2", "end app2"]
    assert results == ["app1 ok", "app2 ok"]


def test_after_sigkill_and_a_host_restart_resume_records_the_step_from_the_journal(
    tmp_path: Path, store_url: str, sshd_hosts: Callable[[int], SSHFleet]
) -> None:
    fleet = sshd_hosts(1)
    text = kill_the_bot_mid_step(tmp_path, store_url, fleet)  # the step finished on the host
    reboot(tmp_path, fleet)
    state, results = resume(tmp_path, text, store_url)
    assert state == State.SUCCEEDED
    # The journal outlived the restart: app1's step is recorded from it, not run again.
    assert runs(tmp_path) == ["start app1", "end app1", "start app2", "end app2"]
    assert results == ["app1 ok", "app2 ok"]


def test_a_step_that_failed_while_no_bot_watched_is_recorded_failed_from_the_journal(
    tmp_path: Path, store_url: str, sshd_hosts: Callable[[int], SSHFleet]
) -> None:
    (tmp_path / "fail").touch()  # app1's step will end with exit 1, after the bot is gone
    text = kill_the_bot_mid_step(tmp_path, store_url, sshd_hosts(1))
    state, results = resume(tmp_path, text, store_url)
    # The recorded failure follows the environment's policy (here: the deploy fails, no
    # rollback configured); the step is not run again, app2 never starts.
    assert state == State.FAILED
    assert runs(tmp_path) == ["start app1", "end app1"]
    assert results == ["app1 failed"]


@pytest.mark.parametrize("loss", ["journal gone", "host rebooted mid-step"])
def test_a_step_the_host_cannot_account_for_runs_again_only_when_a_human_says_so(
    tmp_path: Path, store_url: str, sshd_hosts: Callable[[int], SSHFleet], loss: str
) -> None:
    fleet = sshd_hosts(1)
    if loss == "journal gone":
        text = kill_the_bot_mid_step(tmp_path, store_url, fleet)
        [deployment_journal] = journals(tmp_path).iterdir()
        shutil.rmtree(deployment_journal)  # the host lost the record (a restore, a new disk)
        ran_before = ["start app1", "end app1"]
    else:
        text = kill_the_bot_mid_step(tmp_path, store_url, fleet, sleep=60)
        reboot(tmp_path, fleet)  # the step died half done: its journal says started, never ended
        ran_before = ["start app1"]
    (tmp_path / "slow").unlink()
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    chat = RecordingChat()
    engine = make_engine(config, open_store(store_url), chat)
    try:
        d = engine.store.deployments("prod")[0]
        time.sleep(1.2)  # the dead process's heartbeat goes stale
        engine.start()
        wait_for(lambda: engine.deployment(d.id).state == State.INTERRUPTED, 30, "interrupted")
        engine.resume("bob", d.id)
        engine.wait_idle(90)
        held = engine.deployment(d.id)
        assert held.state == State.INTERRUPTED  # not failed: no policy fires, a human decides
        assert "cannot say whether this step ran" in (held.error or ""), held.error
        assert runs(tmp_path) == ran_before  # not run a second time
        alert = chat.of_kind("message")[-1]
        assert [b.label for b in alert.buttons] == ["Run it again", "Roll back"], alert
        engine.run_again("bob", d.id)
        engine.wait_idle(90)
        done = engine.deployment(d.id)
        assert done.state == State.SUCCEEDED, done.error
        assert runs(tmp_path) == [*ran_before, "start app1", "end app1", "start app2", "end app2"]
    finally:
        engine.shutdown()
        engine.store.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.support.pgfixtures import DisposablePostgresStore

    schema = DisposablePostgresStore()
    yield schema.schema_url
    schema.close()


def test_two_replicas_the_survivor_resumes_from_the_journal(
    tmp_path: Path, pg_url: str, sshd_hosts: Callable[[int], SSHFleet]
) -> None:
    fleet = sshd_hosts(1)
    text = config_text(tmp_path, fleet, sleep=4)
    (tmp_path / "slow").touch()
    doomed = start_bot(tmp_path, text, pg_url)  # replica A takes the run
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    survivor = make_engine(config, open_store(pg_url), RecordingChat())  # replica B, alive throughout
    try:
        try:
            wait_for(lambda: runs(tmp_path) == ["start app1"], 60, "app1's step started on replica A")
            survivor.start()
        finally:
            kill_bot(doomed)
        [d] = survivor.store.deployments("prod")
        # B notices A's run went stale and declares it interrupted; the step goes on on the host.
        wait_for(lambda: survivor.deployment(d.id).state == State.INTERRUPTED, 60, "interrupted by B")
        wait_for(lambda: runs(tmp_path) == ["start app1", "end app1"], 60, "the step finished on the host")
        survivor.resume("bob", d.id)
        survivor.wait_idle(90)
        assert survivor.deployment(d.id).state == State.SUCCEEDED
        assert runs(tmp_path) == ["start app1", "end app1", "start app2", "end app2"]
        results = [f"{r['host']} {r['status']}" for r in survivor.store.host_results(d.id)]
        assert results == ["app1 ok", "app2 ok"]
    finally:
        survivor.shutdown()
        survivor.store.close()
