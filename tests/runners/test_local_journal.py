"""The step journal on the local backend: the same wrapper as on an SSH host, in
`<journal_root>/<deployment>/<host>/<step key>/`. A step runs once per name (a second run
replays it), outlives the session that started it (and is reattached), is stopped with its
process groups, is ended by its timeout, and an unwritable journal is a clear error."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runners import Host, HostResult, Pipeline, Step, Strategy
from runners.backends.local import LocalBackend
from runners.base import CommandOutcome, HostSession
from runners.journal import JournalState


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def run_one(root: Path, step: Step, journal: str = "7") -> HostResult:
    pipeline = Pipeline(LocalBackend(journal_root=str(root)), [Host("h1")], Strategy(), {}, journal=journal)
    try:
        result = pipeline.run_stage("deploy", [step])
    finally:
        pipeline.close()
    [host_result] = result.steps[0].hosts
    return host_result


def test_a_step_is_recorded_and_never_run_twice_under_one_name(tmp_path: Path) -> None:
    step = Step("migrate", f"echo ran >> {tmp_path}/runs; echo migrated; exit 3")
    first = run_one(tmp_path / "journal", step)
    assert (first.status, first.exit_code, first.output) == ("failed", 3, "migrated\n")
    journal = tmp_path / "journal" / "7" / "h1" / "deploy.b0.s0.migrate"
    assert (journal / "output").read_text() == "migrated\n"
    assert (journal / "exit").read_text().split()[:2] == ["3", "exit"]
    again = run_one(tmp_path / "journal", step)  # the same deployment resumed: replayed
    assert (again.status, again.exit_code, again.output) == ("failed", 3, "migrated\n")
    assert (tmp_path / "runs").read_text() == "ran\n"
    run_one(tmp_path / "journal", step, journal="8")  # another deployment runs it
    assert (tmp_path / "runs").read_text() == "ran\nran\n"


def start_in_background(
    session: HostSession, line: str, root: Path
) -> tuple[threading.Thread, dict[str, CommandOutcome], Path]:
    """Run `line` as the step `7/k` of host h1 on a thread, until its journal says it started:
    the thread, where its outcome lands (`r`), the journal's `started` file."""
    out: dict[str, CommandOutcome] = {}
    thread = threading.Thread(
        target=lambda: out.update(
            r=session.run(line, timeout=None, env={}, on_output=lambda _: None, journal="7/k")
        ),
        daemon=True,
    )
    thread.start()
    started = root / "7" / "h1" / "k" / "started"
    wait_for(started.exists)
    return thread, out, started


def test_a_step_outlives_its_session_and_is_reattached(tmp_path: Path) -> None:
    backend = LocalBackend(journal_root=str(tmp_path))
    session = backend.open(Host("h1"))
    line = f"echo one; while [ -e {tmp_path}/hold ]; do sleep 0.05; done; echo two; exit 4"
    (tmp_path / "hold").touch()
    thread, _, started = start_in_background(session, line, tmp_path)
    session.close()  # the bot's side is gone (as a dead bot's would be)
    thread.join(10)
    assert not thread.is_alive()
    pid = int(started.read_text().split()[0])
    assert alive(pid), "the step died with the session that started it"
    fresh = backend.open(Host("h1"))
    assert fresh.journal_state("7/k").state == "running"
    (tmp_path / "hold").unlink()
    seen: list[str] = []
    outcome = fresh.run("echo never", timeout=None, env={}, on_output=seen.append, journal="7/k")
    assert (outcome.exit_code, outcome.output) == (4, "one\ntwo\n")
    assert fresh.journal_state("7/k").state == "finished"


def test_stop_ends_the_steps_process_groups_and_sets_the_record_aside(tmp_path: Path) -> None:
    session = LocalBackend(journal_root=str(tmp_path)).open(Host("h1"))
    line = "sleep 100 & trap '' TERM; sleep 100"  # ignores TERM: KILL it is
    thread, out, started = start_in_background(session, line, tmp_path)
    pid = int(started.read_text().split()[0])
    time.sleep(0.3)  # the TERM trap is set
    assert session.stop("7/k") == "killed"
    thread.join(15)
    assert not thread.is_alive()
    assert "the step was given up and stopped" in out["r"].output
    wait_for(lambda: not alive(pid), 5)
    assert session.journal_state("7/k") == JournalState("absent")  # a step given up on did not finish
    [aside] = (tmp_path / "7" / "h1").glob("k.given-up.*")
    assert (aside / "exit").read_text().split()[:2] == ["137", "signal"]


def test_a_timeout_ends_the_step_in_its_own_session(tmp_path: Path) -> None:
    result = run_one(tmp_path, Step("slow", f"echo $$ > {tmp_path}/pid; sleep 30", timeout=0.5))
    assert result.status == "timed_out", result
    pid = int((tmp_path / "pid").read_text())
    wait_for(lambda: not alive(pid), 5)


def test_an_unwritable_journal_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"  # the journal's parent is a file: nothing can be made below it
    blocked.write_text("")
    result = run_one(blocked / "journal", Step("x", f"touch {tmp_path}/ran"))
    assert result.status == "error", result
    assert result.describe().startswith("h1: cannot write the step journal "), result
    assert not (tmp_path / "ran").exists()


def test_without_a_journal_root_steps_run_as_plain_subprocesses(tmp_path: Path) -> None:
    step = Step("twice", f"echo ran >> {tmp_path}/runs")
    pipeline = Pipeline(LocalBackend(), [Host("h1")], Strategy(), {}, journal="7")
    try:
        pipeline.run_stage("deploy", [step])
        pipeline.run_stage("deploy", [step])  # `deploy-2` in the journal: another name
    finally:
        pipeline.close()
    assert (tmp_path / "runs").read_text() == "ran\nran\n"
    assert list(tmp_path.iterdir()) == [tmp_path / "runs"]
