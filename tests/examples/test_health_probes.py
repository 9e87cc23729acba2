"""examples/health-probes.toml end to end, through the terminal chat, as shipped.

Two OpenSSH hosts (sharing this machine's filesystem; each its own app port and run directory)
restarted one at a time: drained (/readyz 503), switched, restarted gracefully, probed (live,
ready) right after, then live / ready / health on both and a short window on each host's
/metrics. A request held open on web1 across its restart is still answered by the old process.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from bot.domain.deployment import State
from tests.conftest import free_port, stop_demo_app
from tests.support.engines import wait_for
from tests.support.examples import ExampleChat, localize

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh

NAME = "health-probes"
SHIP = "/as alice\n/deploy prod {ref}\n/as bob\npress go\n"


def version(port: int) -> str:
    return str(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()["version"])


def alive(pid: int) -> bool:
    """Is `pid` a running process (a zombie waiting to be reaped is not)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class HeldRequest:
    """A POST /jobs whose body is sent in two halves: in flight until `finish`."""

    BODY = b'{"name": "held across the restart"}'

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = f"POST /jobs HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {len(self.BODY)}\r\n\r\n"
        self.sock.sendall(head.encode() + self.BODY[:10])

    def finish(self) -> str:
        """Send the rest; the status line of the answer."""
        self.sock.sendall(self.BODY[10:])
        answer = b""
        while chunk := self.sock.recv(65536):
            answer += chunk
        self.sock.close()
        return answer.split(b"\r\n", 1)[0].decode()


def test_a_graceful_restart_host_by_host_with_its_probes(tmp_path: Path, sshd_hosts: object) -> None:
    srv, run = tmp_path / "srv", tmp_path / "run"
    ports = {"web1": free_port(), "web2": free_port()}
    hosts = {h: {"port": str(p), "run": str(run / h)} for h, p in ports.items()}
    raw = localize(
        NAME, tmp_path, fleet=sshd_hosts(2), hosts=hosts, monitor={"interval": "0.5s", "duration": "1s"}
    )  # type: ignore[operator]
    try:
        with ExampleChat(raw, NAME) as bot:
            store = bot.engine.store
            out = bot.say(SHIP.format(ref="v1") + "wait\n")
            v1 = store.deployments("prod", limit=1)[0]
            assert v1.state == State.SUCCEEDED, out
            # each host probed right after its own restart, not the host a later batch restarts
            assert "Verify deploy › restart: live@web1 ✓ 200" in out and "· ready@web1 ✓ 200" in out
            for line in (x for x in out.splitlines() if "Verify deploy › restart" in x):
                assert ("web1" in line) != ("web2" in line), line
            smoke = out[out.index("Smoke checks:") :].splitlines()[0]
            for probe in ("live", "ready", "health"):
                assert f"{probe}@web1 ✓" in smoke and f"{probe}@web2 ✓" in smoke, smoke
            assert "errors@web1 ✓" in out and "Monitoring window passed" in bot.wait_for_text("prod runs v1.")

            # v2, host by host, with a request held open on web1 across its restart
            old = int((run / "web1" / "app.pid").read_text())
            held = HeldRequest(ports["web1"])
            bot.say(SHIP.format(ref="v2"), idle=False)
            # restart.sh sent SIGTERM, waited, and started the new process; the old one still answers
            wait_for(
                lambda: int((run / "web1" / "app.pid").read_text()) != old, timeout=60, what="web1 restarted"
            )
            assert alive(old)
            assert held.finish() == "HTTP/1.0 201 Created"  # answered, not reset
            wait_for(lambda: not alive(old), timeout=30, what="the old process to exit once it answered")
            out = bot.say("wait\n")
            v2 = store.deployments("prod", limit=1)[0]
            assert v2.state == State.SUCCEEDED, bot.transcript
            drained = [r for r in store.host_results(v2.id) if r["step"] == "drain"]
            assert [(r["host"], '{"status": "draining"}' in r["output"]) for r in drained] == [
                ("web1", True),
                ("web2", True),
            ]
            first = [r for r in store.host_results(v1.id) if r["step"] == "drain"]
            assert all("nothing to drain" in r["output"] for r in first)  # v1: no app ran yet
            assert {h: version(p) for h, p in ports.items()} == {"web1": "v2", "web2": "v2"}

            out = bot.say("/rollback prod --reason probe the way back\n/as carol\npress go\nwait\n")
            rollback = store.deployments("prod", kind="rollback", limit=1)[0]
            assert rollback.state == State.SUCCEEDED and rollback.release_id == v1.id, out
            assert (
                "Verify rollback › restart: live@web1 ✓" in out
                and "Verify rollback › restart: live@web2 ✓" in out
            )
        assert (srv / "current").resolve() == srv / "releases" / str(v1.id)
        assert {h: version(p) for h, p in ports.items()} == {"web1": "v1", "web2": "v1"}
    finally:
        for h in ports:
            stop_demo_app(run / h)
