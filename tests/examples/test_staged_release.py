"""examples/staged-release.toml end to end, through the terminal chat, as shipped.

Two OpenSSH hosts (they share this machine's filesystem: one release directory tree, each host
its own app port and run directory): pre stages the release, the gate asks, deploy goes canary
first, verify checks each host's own health, post tags the commit on the repository; then
/status, a /rollback with its approval, and /status again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from bot.domain.deployment import State
from tests.conftest import free_port, stop_demo_app
from tests.support.examples import ExampleChat, localize

pytest_plugins = ["tests.support.sshd"]
pytestmark = pytest.mark.ssh

NAME = "staged-release"
SHIP = "/as alice\n/deploy prod {ref}\n/as bob\ntick all\npress go\nwait runs\npress go\nwait\n"


def version(port: int) -> str:
    return str(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["version"])


def tags(repo: Path) -> dict[str, str]:
    out = subprocess.run(
        ["git", f"--git-dir={repo}", "for-each-ref", "--format=%(refname:short) %(*objectname)", "refs/tags/prod"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines())


def test_staged_release_status_rollback_and_the_prod_tags(tmp_path: Path, sshd_hosts: object) -> None:
    srv = tmp_path / "srv"
    ports = {"web1": free_port(), "web2": free_port()}
    hosts = {h: {"port": str(p), "run": str(tmp_path / "run" / h)} for h, p in ports.items()}
    raw = localize(NAME, tmp_path, fleet=sshd_hosts(2), hosts=hosts)  # type: ignore[operator]
    try:
        with ExampleChat(raw, NAME) as bot:
            store = bot.engine.store
            repo = Path(raw["repo"]["push_remote"])
            out = bot.say(SHIP.format(ref="v1"))
            v1 = store.deployments("prod", limit=1)[0]
            assert v1.state == State.SUCCEEDED, out
            assert (
                "🚦 #1 of v1 to prod waits at the gate before deploy: Release staged on every host. Go live?"
                in out
            )
            out = bot.say(SHIP.format(ref="v2"))
            v2 = store.deployments("prod", limit=1)[0]
            assert v2.state == State.SUCCEEDED, out
            # pre ran on every host before the gate, deploy went canary (web1) first, verify per host
            staged = out.index("✓ pre_deploy › fetch release: web2")
            gate = out.index("waits at the gate before deploy")
            assert (
                staged
                < gate
                < out.index("✓ deploy › switch current: web1")
                < out.index("✓ deploy › switch current: web2")
            )
            assert "✓ verify › local health: web1" in out and "✓ verify › local health: web2" in out
            assert "Smoke checks: health@web1 ✓" in out and "health@web2 ✓" in out
            assert (srv / "current").resolve() == srv / "releases" / str(v2.id)
            assert {h: version(p) for h, p in ports.items()} == {"web1": "v2", "web2": "v2"}
            # post: the commit each deploy shipped is tagged on the repository
            assert tags(repo) == {f"prod/{v1.id}": v1.sha, f"prod/{v2.id}": v2.sha}
            assert f"Tagged {(v2.sha or '')[:7]} as prod/{v2.id} and pushed it" in out

            out = bot.say(
                "/status prod\n/as bob\n/rollback prod --reason v2 checkout is slow\n/as carol\npress go\nwait\n/status prod\n"
            )
            first, second = out.split("/status prod")[1], out.split("/status prod")[-1]
            assert (
                f"*prod*: v2 ({(v2.sha or '')[:7]}) since" in first
                and "deployed by alice, approved by bob" in first
            )
            rollback = store.deployments("prod", kind="rollback", limit=1)[0]
            assert rollback.state == State.SUCCEEDED and rollback.release_id == v1.id, out
            assert "✓ rollback › local health: web1" in out and "✓ rollback › local health: web2" in out
            assert (
                f"*prod*: v1 ({(v1.sha or '')[:7]}) since" in second
                and "rolled back by bob, approved by carol" in second
            )
            assert bot.engine.deployment(v2.id).state == State.ROLLED_BACK
        assert (srv / "current").resolve() == srv / "releases" / str(v1.id)
        assert {h: version(p) for h, p in ports.items()} == {"web1": "v1", "web2": "v1"}
    finally:
        for h in ports:
            stop_demo_app(tmp_path / "run" / h)
