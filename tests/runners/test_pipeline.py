"""The stage pipeline and strategies: batches, ordering, bounds, pauses, failures, once, redaction.

Ordering and concurrency are observed with a small recording backend (it runs nothing);
everything that can run does, with the local backend or a real `sh`.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from runners import CommandOutcome, Host, HostUnreachable, OutputSink, Pipeline, ProgressEvent, Step, Strategy
from runners.backends import LocalBackend, PrinterBackend
from runners.command import ENV_LOADER, LOGIN_SHELL, remote_command, sudo_command
from runners.redact import Redactor, weak_secrets


class Recorder:
    """A backend that records (host, command) in order, tracks concurrency, and can fail."""

    name = "recording"

    def __init__(
        self,
        *,
        delay: float = 0.0,
        fail: Mapping[str, int] | None = None,
        unreachable: set[str] | None = None,
        chunks: list[str] | None = None,
    ) -> None:
        self.delay = delay
        self.fail = dict(fail or {})
        self.unreachable = unreachable or set()
        self.chunks = chunks
        self.calls: list[tuple[str, str]] = []
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.backend_closed = False
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def open(self, host: Host) -> RecorderSession:
        with self.lock:
            self.opened.append(host.name)
        if host.name in self.unreachable:
            raise HostUnreachable(f"{host.name}: connection refused")
        return RecorderSession(self, host)

    def close(self) -> None:
        self.backend_closed = True

    def hosts_of(self, command: str) -> list[str]:
        return [h for h, c in self.calls if c == command]


class RecorderSession:
    def __init__(self, backend: Recorder, host: Host) -> None:
        self.backend = backend
        self.host = host

    def run(
        self,
        command: str,
        *,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputSink,
        journal: str | None = None,
    ) -> CommandOutcome:
        b = self.backend
        with b.lock:
            b.calls.append((self.host.name, command))
            b.active += 1
            b.max_active = max(b.max_active, b.active)
        try:
            for chunk in b.chunks or []:
                on_output(chunk)
            time.sleep(b.delay)
        finally:
            with b.lock:
                b.active -= 1
        return CommandOutcome(exit_code=b.fail.get(self.host.name, 0), output="")

    def put(self, local: str, remote: str) -> None:
        pass

    def close(self) -> None:
        self.backend.closed.append(self.host.name)


def hosts(n: int, **fields: object) -> list[Host]:
    return [Host(f"h{i + 1}", **fields) for i in range(n)]  # type: ignore[arg-type]


def batches_seen(events: list[ProgressEvent]) -> list[list[str]]:
    return [list(e.hosts) for e in events if e.kind == "batch_started"]


# -- strategies -------------------------------------------------------------------------------


def test_strategy_batches() -> None:
    fleet = hosts(10)
    names = lambda bs: [[h.name for h in b] for b in bs]  # noqa: E731
    assert names(Strategy("parallel").batches(fleet)) == [[h.name for h in fleet]]
    assert names(Strategy("sequential").batches(fleet[:3])) == [["h1"], ["h2"], ["h3"]]
    assert names(Strategy("canary", canary=1, batch_size=4).batches(fleet)) == [
        ["h1"],
        ["h2", "h3", "h4", "h5"],
        ["h6", "h7", "h8", "h9"],
        ["h10"],
    ]
    # 25% of 10 hosts = 3 per batch (rounded up), after a canary of 2.
    assert [len(b) for b in Strategy("canary", canary=2, batch_percent=25).batches(fleet)] == [2, 3, 3, 2]
    assert [len(b) for b in Strategy("canary", canary=3).batches(fleet)] == [3, 7]
    assert [len(b) for b in Strategy("canary", canary=0).batches(fleet[:2])] == [1, 1]
    assert Strategy("canary", canary=20).batches(fleet[:2]) == [fleet[:2]]
    assert Strategy().batches([]) == []
    assert Strategy("canary", batch_percent=25).describe() == "canary 1, then batches of 25%"


def test_parallel_is_bounded_by_max_parallel() -> None:
    rec = Recorder(delay=0.1)
    pipeline = Pipeline(rec, hosts(8), Strategy("parallel", max_parallel=3), {})
    started = time.monotonic()
    result = pipeline.run_stage("deploy", [Step("s", "true")])
    elapsed = time.monotonic() - started
    assert result.ok and len(result.steps[0].hosts) == 8
    assert rec.max_active == 3
    assert elapsed >= 0.3  # 8 hosts, 3 at a time: 3 waves
    assert [h.host for h in result.steps[0].hosts] == [f"h{i}" for i in range(1, 9)]  # host order


def test_parallel_runs_hosts_concurrently() -> None:
    rec = Recorder(delay=0.3)
    pipeline = Pipeline(rec, hosts(10), Strategy("parallel", max_parallel=50), {})
    started = time.monotonic()
    assert pipeline.run_stage("deploy", [Step("s", "true")]).ok
    assert time.monotonic() - started < 0.25 * 10 / 2
    assert rec.max_active == 10


def test_sequential_runs_one_host_at_a_time_in_order() -> None:
    rec = Recorder(delay=0.01)
    pipeline = Pipeline(rec, hosts(4), Strategy("sequential"), {})
    steps = [Step("a", "echo a"), Step("b", "echo b")]
    assert pipeline.run_stage("deploy", steps).ok
    assert rec.max_active == 1
    # Per host: every step, then the next host.
    assert rec.calls == [(f"h{i}", c) for i in range(1, 5) for c in ("echo a", "echo b")]


def test_canary_then_batches_order() -> None:
    rec = Recorder(delay=0.02)
    events: list[ProgressEvent] = []
    strategy = Strategy("canary", canary=1, batch_size=2, max_parallel=10)
    pipeline = Pipeline(rec, hosts(5), strategy, {}, on_progress=events.append)
    steps = [Step("a", "echo a"), Step("b", "echo b")]
    result = pipeline.run_stage("deploy", steps)
    assert result.ok and result.completed_batches == 3 and result.skipped == []
    assert batches_seen(events) == [["h1"], ["h2", "h3"], ["h4", "h5"]]
    # Inside a batch, step a runs on all of its hosts before step b starts.
    order = [(h, c) for h, c in rec.calls]
    positions = {call: i for i, call in enumerate(order)}
    for batch in (["h1"], ["h2", "h3"], ["h4", "h5"]):
        assert max(positions[(h, "echo a")] for h in batch) < min(positions[(h, "echo b")] for h in batch)
    # And batches never overlap.
    assert max(positions[(h, "echo b")] for h in ("h2", "h3")) < positions[("h4", "echo a")]


def test_pause_between_batches_and_abort_during_pause() -> None:
    rec = Recorder()
    strategy = Strategy("canary", canary=1, batch_size=1, pause=0.2)
    pipeline = Pipeline(rec, hosts(3), strategy, {})
    started = time.monotonic()
    assert pipeline.run_stage("deploy", [Step("s", "true")]).ok
    assert time.monotonic() - started >= 0.4  # two pauses, none before the first batch

    stop = threading.Event()
    rec2 = Recorder()
    strategy = Strategy("canary", canary=1, batch_size=1, pause=5)
    pipeline = Pipeline(rec2, hosts(3), strategy, {}, stop=stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    result = pipeline.run_stage("deploy", [Step("s", "true")])
    assert time.monotonic() - started < 2  # the abort cuts the pause short
    assert result.aborted and not result.ok
    assert rec2.hosts_of("true") == ["h1"]
    assert result.skipped == ["h2", "h3"]
    assert [r.status for r in result.skipped_results()] == ["skipped", "skipped"]


def test_failure_stops_at_the_end_of_its_batch() -> None:
    rec = Recorder(fail={"h3": 2})
    events: list[ProgressEvent] = []
    strategy = Strategy("canary", canary=1, batch_size=2)
    pipeline = Pipeline(rec, hosts(5), strategy, {}, on_progress=events.append)
    result = pipeline.run_stage("deploy", [Step("a", "echo a"), Step("b", "echo b")])
    assert not result.ok
    assert result.failed_step is not None and result.failed_step.step == "a"
    [failure] = result.failed_step.failures()
    assert failure.host == "h3" and failure.exit_code == 2
    assert failure.describe().startswith("h3: exit 2 after")
    # The failing batch ran step a on all its hosts (h2 too), but not step b.
    assert sorted(rec.hosts_of("echo a")) == ["h1", "h2", "h3"]
    assert rec.hosts_of("echo b") == ["h1"]
    assert result.completed_batches == 1
    assert result.skipped == ["h4", "h5"]
    done = [e for e in events if e.kind == "stage_done"]
    assert done and done[0].hosts == ("h4", "h5")


def test_resume_from_a_batch() -> None:
    rec = Recorder()
    pipeline = Pipeline(rec, hosts(5), Strategy("canary", canary=1, batch_size=2), {})
    result = pipeline.run_stage("deploy", [Step("a", "echo a")], start_batch=1)
    assert result.ok and result.completed_batches == 3
    assert sorted(rec.hosts_of("echo a")) == ["h2", "h3", "h4", "h5"]


def test_once_steps_run_on_the_first_matching_host_only() -> None:
    rec = Recorder()
    fleet = [Host("h1", roles=("web",)), Host("h2", roles=("web", "db")), Host("h3", roles=("web", "db"))]
    pipeline = Pipeline(rec, fleet, Strategy("canary", canary=1, batch_size=1), {})
    steps = [
        Step("migrate", "migrate", once=True, roles=("db",)),
        Step("backup", "backup", once=True),
        Step("deploy", "deploy"),
    ]
    assert pipeline.run_stage("deploy", steps).ok
    assert rec.hosts_of("migrate") == ["h2"]  # first db host, in the batch where it appears
    assert rec.hosts_of("backup") == ["h1"]
    assert rec.hosts_of("deploy") == ["h1", "h2", "h3"]


def test_sessions_are_opened_once_per_host_and_closed() -> None:
    rec = Recorder()
    pipeline = Pipeline(rec, hosts(3), Strategy("parallel"), {})
    for stage in ("pre_deploy", "deploy", "verify"):
        assert pipeline.run_stage(stage, [Step("a", "a"), Step("b", "b")]).ok
    assert sorted(rec.opened) == ["h1", "h2", "h3"]
    pipeline.close()
    assert sorted(rec.closed) == ["h1", "h2", "h3"] and rec.backend_closed


def test_unreachable_host_is_an_error_naming_it_and_is_not_retried() -> None:
    rec = Recorder(unreachable={"h2"})
    pipeline = Pipeline(rec, hosts(3), Strategy("parallel"), {})
    result = pipeline.run_stage("deploy", [Step("a", "a")])
    assert result.failed_step is not None
    [failure] = result.failed_step.failures()
    assert failure.status == "error" and failure.describe() == "h2: connection refused"
    pipeline.run_stage("deploy", [Step("b", "b")])
    assert rec.opened.count("h2") == 1


def test_secret_split_across_chunks_is_redacted() -> None:
    rec = Recorder(chunks=["token=hun", "ter2-xyz ok\nnext line", " hunter2-x", "yz\n"])
    events: list[ProgressEvent] = []
    pipeline = Pipeline(
        rec, hosts(1), Strategy(), {}, redactor=Redactor(["hunter2-xyz"]), on_progress=events.append
    )
    result = pipeline.run_stage("deploy", [Step("a", "a")])
    output = result.steps[0].hosts[0].output
    assert output == "token=[redacted] ok\nnext line [redacted]\n"
    streamed = "".join(e.text or "" for e in events if e.kind == "output")
    assert "hunter" not in streamed and streamed == output


# -- local backend ----------------------------------------------------------------------------


def test_local_backend_runs_steps_with_env_and_redacts(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    pipeline = Pipeline(
        LocalBackend(cwd=str(tmp_path)),
        hosts(2),
        Strategy("parallel"),
        {"ref": "v1; rm -rf /"},
        env={"DEPLOY_TOKEN": "s3cret-token"},
        redactor=Redactor(["s3cret-token"]),
        on_progress=events.append,
    )
    result = pipeline.run_stage("deploy", [Step("echo", "echo {ref} {host} $DEPLOY_TOKEN")])
    assert result.ok
    assert [h.output for h in result.steps[0].hosts] == [
        "v1; rm -rf / h1 [redacted]\n",
        "v1; rm -rf / h2 [redacted]\n",
    ]
    assert not any("s3cret" in (e.text or "") for e in events)


def test_local_backend_timeout_kills_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pipeline = Pipeline(LocalBackend(), hosts(1), Strategy(), {"marker": str(marker)})
    started = time.monotonic()
    result = pipeline.run_stage("deploy", [Step("slow", "sleep 2; touch {marker}", timeout=0.5)])
    assert time.monotonic() - started < 1.5
    host = result.failed_step.hosts[0] if result.failed_step else None
    assert host is not None and host.status == "timed_out"
    time.sleep(2)
    assert not marker.exists()


# -- command lines (shared by the SSH backend and the printer) --------------------------------


def run_sh(line: str, stdin: str = "", timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", line], input=stdin, capture_output=True, text=True, timeout=timeout)


def test_remote_command_without_extras_is_the_command() -> None:
    assert remote_command("echo hi").line == "echo hi"
    assert remote_command("echo hi").stdin == ""
    assert remote_command(sudo_command("echo hi")).line == "sudo -n sh -c 'echo hi'"


def test_remote_command_timeout_really_stops_the_work(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    wrapped = remote_command(f"sleep 2; touch '{marker}'", timeout=0.5)
    assert wrapped.line == (
        f"exec timeout --kill-after=5 0.5 {LOGIN_SHELL} -c 'sleep 2; touch '\"'\"'{marker}'\"'\"''"
    )
    started = time.monotonic()
    proc = run_sh(wrapped.line)
    assert proc.returncode == 124 and time.monotonic() - started < 1.5
    time.sleep(2)
    assert not marker.exists()


def test_remote_command_env_travels_on_stdin_not_the_command_line() -> None:
    secret = "it's a $ecret; `rm -rf /`"
    wrapped = remote_command('printf \'%s|%s\' "$A" "$B_2"', timeout=5, env={"A": secret, "B_2": "two"})
    assert secret not in wrapped.line and "two" not in wrapped.line
    assert wrapped.line.startswith(ENV_LOADER + f" && exec timeout --kill-after=5 5 {LOGIN_SHELL} -c ")
    proc = run_sh(wrapped.line, wrapped.stdin)
    assert proc.stdout == f"{secret}|two", proc.stderr
    with pytest.raises(ValueError):
        remote_command("true", env={"NOT-A-NAME": "x"})


def test_remote_command_sudo_wraps_timeout_and_env_inside() -> None:
    wrapped = remote_command(sudo_command("echo $A"), timeout=3, env={"A": "x"})
    sudo, inner = shlex.split(wrapped.line)[:4], shlex.split(wrapped.line)[4]
    assert sudo == ["sudo", "-n", "sh", "-c"]
    # Inside sudo the shell is `sh` with or without a timeout.
    assert inner == f"{ENV_LOADER} && exec timeout --kill-after=5 3 sh -c 'echo $A'"
    with_password = remote_command(sudo_command("id -u"), sudo_password="pw")
    assert with_password.line.startswith("sudo -S -p '' sh -c ")
    assert with_password.stdin.startswith("pw\n#gonogo-env\n")
    # Without the `sudo` prefix, the body is valid shell that skips the password line:
    body = with_password.line.removeprefix("sudo -S -p '' sh -c ")
    proc = run_sh(f"sh -c {body}", "pw\n#gonogo-env\n")
    assert proc.returncode == 0 and proc.stdout.strip().isdigit()


def test_printer_prints_the_wrapped_command_per_host() -> None:
    printer = PrinterBackend()
    pipeline = Pipeline(
        printer,
        hosts(2),
        Strategy("sequential"),
        {"ref": "v1; x"},
        env={"TOKEN": "s3cret"},
    )
    assert pipeline.run_stage("deploy", [Step("echo", "echo {ref}", timeout=60)]).ok
    expected = remote_command("echo 'v1; x'", timeout=60, env={"TOKEN": "s3cret"}).line
    assert printer.lines == [
        "# stage deploy",
        "# deploy: batch 1: h1",
        f"[h1] $ {expected}    # stdin: TOKEN",
        "# deploy: batch 2: h2",
        f"[h2] $ {expected}    # stdin: TOKEN",
    ]
    assert not any("s3cret" in line for line in printer.lines)


# -- redaction edge cases (real `sh` through the local backend) -------------------------------


def streamed_and_output(events: list[ProgressEvent], result_output: str) -> str:
    return "".join(e.text or "" for e in events if e.kind == "output") + "\n" + result_output


def leaks(secret: str, text: str, window: int = 24) -> list[str]:
    """Every `window`-long piece of `secret` that appears in `text`."""
    return [
        secret[i : i + window]
        for i in range(0, len(secret) - window + 1, 8)
        if secret[i : i + window] in text
    ]


def test_a_long_secret_at_the_cut_of_an_overlong_line_never_leaks() -> None:
    # 9000 x, a 20000-character secret, 9000 y, and no newline at all: the line buffer must cut
    # the line (it is far over 8192 characters), and whatever the chunks, a cut made while the
    # secret is still arriving would fall inside it.
    import secrets as random_secrets

    secret = "".join(random_secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(20000))
    events: list[ProgressEvent] = []
    pipeline = Pipeline(
        LocalBackend(),
        hosts(1),
        Strategy(),
        {},
        env={"BIG_SECRET": secret},
        redactor=Redactor([secret]),
        on_progress=events.append,
    )
    command = "head -c 9000 /dev/zero | tr '\\000' x; printf %s \"$BIG_SECRET\"; head -c 9000 /dev/zero | tr '\\000' y"
    result = pipeline.run_stage("deploy", [Step("long", command)])
    assert result.ok, result.failed_step
    text = streamed_and_output(events, result.steps[0].hosts[0].output)
    assert leaks(secret, text) == []
    streamed = "".join(e.text or "" for e in events if e.kind == "output")
    assert streamed == "x" * 9000 + "[redacted]" + "y" * 9000


def test_a_secret_with_a_newline_arriving_in_two_pieces_is_redacted() -> None:
    secret = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    events: list[ProgressEvent] = []
    pipeline = Pipeline(
        LocalBackend(), hosts(1), Strategy(), {}, redactor=Redactor([secret]), on_progress=events.append
    )
    command = (
        "printf 'key=-----BEGIN KEY-----\\n'; sleep 0.3; printf 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nafter\\n'"
    )
    result = pipeline.run_stage("deploy", [Step("pem", command)])
    assert result.ok, result.failed_step
    streamed = "".join(e.text or "" for e in events if e.kind == "output")
    assert streamed == "key=[redacted]\nafter\n"
    assert "BEGIN" not in streamed and "MIIE" not in streamed


def test_short_and_overlapping_secrets_are_masked() -> None:
    # A secret is masked however short (a config check can warn about weak ones)...
    assert Redactor(["ab"])("xaby ab") == "x[redacted]y [redacted]"
    assert weak_secrets(["ab", "", "long enough secret"]) == ["ab"]
    # ...and overlapping secrets leave no fragment of either.
    assert Redactor(["abcd", "cdef"])("xabcdefx") == "x[redacted]x"
    assert Redactor(["abcd", "cdef"]).safe_cut("xxabcdefyy", 5) == 2


def test_local_backend_reports_a_signal_death() -> None:
    pipeline = Pipeline(LocalBackend(), hosts(1), Strategy(), {})
    result = pipeline.run_stage("deploy", [Step("die", "kill -9 $$")])
    assert result.failed_step is not None
    [host] = result.failed_step.hosts
    assert host.status == "failed" and host.exit_code == 137
    assert host.describe().startswith("h1: killed by SIGKILL after ")


def test_worker_threads_are_started_once_per_pipeline() -> None:
    def workers() -> int:  # this pipeline's threads only (others' may come and go meanwhile)
        return sum(t.name.startswith("gonogo-host") for t in threading.enumerate())

    rec = Recorder(delay=0.2)  # long enough for a batch's four hosts to overlap on a busy machine
    pipeline = Pipeline(rec, hosts(6), Strategy("canary", canary=1, batch_size=5, max_parallel=4), {})
    before = workers()
    assert pipeline.run_stage("deploy", [Step("a", "a"), Step("b", "b")]).ok
    assert pipeline.run_stage("verify", [Step("c", "c")]).ok
    assert workers() - before == 4  # one pool of max_parallel threads, kept
    assert rec.max_active == 4
    pipeline.close()
    assert workers() == before


def test_a_resume_skips_the_steps_its_batch_already_finished(tmp_path: Path) -> None:
    log = tmp_path / "log"
    steps = [Step(name, f"echo {name}-{{host}} >> {log}") for name in ("fetch", "switch", "restart")]
    hosts = [Host("h1"), Host("h2")]
    pipeline = Pipeline(LocalBackend(), hosts, Strategy(kind="sequential"), {})
    try:
        result = pipeline.run_stage("deploy", steps, start_batch=0, start_step=2)
    finally:
        pipeline.close()
    assert result.ok
    # h1's batch was interrupted after `switch`: only `restart` runs there; h2's batch runs whole
    assert log.read_text().split() == ["restart-h1", "fetch-h2", "switch-h2", "restart-h2"]
