"""Leave nothing behind: quitting the terminal chat on the demo stops the demo app it started.

Real console processes, the real demo scripts (`demo/restart.sh`, `demo/stop.sh`), real ports:
after a quit the port is free for the next demo, in this folder or another; `--keep-running`
leaves the app serving; `./scripts/run.sh` twice in a row just works.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT, free_port, stop_demo_app, write_demo_config
from tests.console.test_console_e2e import console, health

DEPLOY = "/deploy demo {ref}\n/as bob\ntick all\npress go\nwait\n"


def port_of(config: Path) -> int:
    return int(load_config(config).environments["demo"].vars["port"])


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_quitting_stops_the_demo_app(demo_config_path: Path) -> None:
    out = console(demo_config_path, DEPLOY.format(ref="v1") + "quit\n")
    assert "✓ deploy › restart app: localhost" in out, out
    assert "(demo: stopped the demo app (v1); --keep-running leaves it up)" in out
    assert not listening(port_of(demo_config_path))
    assert not list((demo_config_path.parent / "data").glob("**/app.pid"))


def test_keep_running_leaves_the_app_serving(demo_config_path: Path) -> None:
    out = console(demo_config_path, DEPLOY.format(ref="v1"), keep_running=True)
    assert "stopped the demo app" not in out
    assert health(demo_config_path)["version"] == "v1"


def test_twice_in_a_row_and_a_second_demo_elsewhere(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_demo_config(tmp_path / "a")
    other = write_demo_config(tmp_path / "b")
    for config in (first, other):
        text = config.read_text()
        config.write_text(text.replace(f'port = "{port_of(config)}"', f'port = "{port}"'))
    try:
        console(first, DEPLOY.format(ref="v1"))
        again = console(first, DEPLOY.format(ref="v3"))  # the same folder, again
        assert "FAILED" not in again
        assert "✓ verify › health: localhost" in again, again
        assert "5 commit(s)" in again  # what runs (v1) is remembered: the changelog is v1..v3
        elsewhere = console(other, DEPLOY.format(ref="v2"))  # another folder, the same port
        assert "✓ deploy › restart app: localhost" in elsewhere, elsewhere
        assert "is taken by another process" not in elsewhere
        assert not listening(port)
    finally:
        stop_demo_app(tmp_path / "a" / "data")
        stop_demo_app(tmp_path / "b" / "data")


def test_run_sh_twice_in_a_row(demo_config_path: Path) -> None:
    env = {**os.environ, "GONOGO_CONFIG": str(demo_config_path)}
    for ref in ("v1", "v2"):
        proc = subprocess.run(
            [str(ROOT / "scripts" / "run.sh")],
            input=DEPLOY.format(ref=ref) + "/status demo\n",
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stderr == "", proc.stderr  # set up already: nothing to say
        assert f"*demo*: {ref} (" in proc.stdout, proc.stdout
        assert "stopped the demo app" in proc.stdout
    assert not listening(port_of(demo_config_path))


def test_stop_steps_are_for_local_environments_only() -> None:
    text = (ROOT / "config.example.toml").read_text() + (
        '\n[[environments.prod.steps.stop]]\nname = "stop"\nrun = "sudo systemctl stop shop"\n'
    )
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(text), source=ROOT / "config.example.toml", environ={})
    assert err.value.problems == [
        'environments.prod.steps.stop: only for backend = "local" (the terminal chat runs these on this '
        "machine when it quits)"
    ]
