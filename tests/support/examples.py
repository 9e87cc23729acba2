"""The shipped examples (`examples/*.toml`) run on this machine, through the terminal chat.

    raw = localize("db-migration", tmp_path, fleet=fleet, hosts={"app1": {"port": "9001"}},
                   prometheus_url=prom.url, monitor={"interval": "0.5s", "duration": "3s"})
    with ExampleChat(raw, "db-migration") as bot:
        out = bot.say("/deploy prod v1\\n/as bob\\ntick all\\npress go\\nwait\\n")

`localize` reads the example and changes **only what is machine-specific**, each a key the
example has (it fails when the example lacks one, so the two cannot drift apart):

- `[bot] data_dir` → `tmp/data`; `[repo] url` (and `push_remote`) → a copy of the demo's git
  history (v1, v2, v3);
- `[ssh] user`, `identity_file`, `known_hosts` → the test fleet's (and its empty ssh_config);
- every host of an `ssh` environment: `address` → 127.0.0.1, `port` → one of the fleet's sshd
  servers (host i on server i mod n: the hosts share this machine's filesystem), and the host
  variables given in `hosts` (app ports) set over the example's;
- each environment's `deploy_to` → `tmp/srv`, and `prometheus_url` → the test Prometheus;
- `monitor`: only the window's timing (`interval`, `duration`), shortened so a test is quick.

Everything else (steps, checks, thresholds, checklists, policies) runs as shipped. Secrets and
DSNs are environment variables in every example: the test sets them (monkeypatch).

`ExampleChat` is the engine wired as `gonogo console` wires it (`build_engine`: the store of
`[bot]`, the git resolver, the backends) behind the terminal chat. `say(script)` runs console
lines and waits for the engine as the console does (`idle=False`: it does not, so a test can
act while a step runs); `close(grace=...)` stops the bot as SIGTERM does; a second
`ExampleChat` on the same document is the restarted bot on the same store.
"""

from __future__ import annotations

import io
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from bot.app.wiring import build_engine
from bot.config import Config, parse_config
from bot.console.chat import ConsoleChat
from bot.console.repl import Console
from bot.engine import Engine
from tests.support.engines import wait_for
from tests.support.sshd import SSHFleet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: The monitoring keys a test may shorten: timing only, never what is watched or its limits.
TIMING = frozenset({"interval", "duration"})


def example_path(name: str) -> Path:
    """`examples/<name>.toml`."""
    return EXAMPLES / f"{name}.toml"


def _replace(table: dict[str, Any], key: str, value: object, where: str) -> None:
    if key not in table:
        raise AssertionError(
            f"{where} has no {key!r} to make local (the example and tests/support/examples.py disagree)"
        )
    table[key] = value


def localize(
    name: str,
    tmp: Path,
    *,
    fleet: SSHFleet | None = None,
    hosts: Mapping[str, Mapping[str, str]] | None = None,
    prometheus_url: str | None = None,
    monitor: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The example `name` as a TOML document for this machine (see the module docstring)."""
    from tests.conftest import copy_demo_repo

    raw = tomllib.loads(example_path(name).read_text())
    data = tmp / "data"
    _replace(raw["bot"], "data_dir", str(data), "[bot]")
    if "repo" in raw:
        repo = str(copy_demo_repo(data / "demo-repo.git"))
        _replace(raw["repo"], "url", repo, "[repo]")
        if "push_remote" in raw["repo"]:
            raw["repo"]["push_remote"] = repo  # deploy tags go back to the same (local) repository
    if fleet is not None:
        ssh = raw["ssh"]
        for key, value in (
            ("user", fleet.user),
            ("identity_file", str(fleet.key)),
            ("known_hosts", str(fleet.known_hosts)),
        ):
            _replace(ssh, key, value, "[ssh]")
        ssh["ssh_config"] = str(fleet.root / "ssh_config")  # empty: this machine's ~/.ssh/config stays out
    host_vars = dict(hosts or {})
    for env_name, env in raw["environments"].items():
        where = f"[environments.{env_name}]"
        if env.get("backend", "ssh") == "ssh":
            if fleet is None:
                raise AssertionError(f"{where} runs over SSH: give localize() the sshd fleet")
            for i, host in enumerate(env["hosts"]):
                _replace(host, "address", "127.0.0.1", f"{where} host {host['name']}")
                host["port"] = fleet.servers[i % len(fleet.servers)].port
                if host["name"] in host_vars:
                    host["vars"] = {**host.get("vars", {}), **host_vars.pop(host["name"])}
        srv = tmp / "srv"
        srv.mkdir(exist_ok=True)
        _replace(env, "deploy_to", str(srv), where)
        if prometheus_url is not None:
            _replace(env, "prometheus_url", prometheus_url, where)
        if monitor:
            unknown = set(monitor) - TIMING
            if unknown:
                raise AssertionError(f"only the window's timing may change in a test, not {sorted(unknown)}")
            env.setdefault("monitor", {}).update(monitor)
    if host_vars:
        raise AssertionError(f"no such hosts in {name}: {sorted(host_vars)}")
    return raw


def load_example(raw: Mapping[str, Any], name: str, environ: Mapping[str, str] | None = None) -> Config:
    """The localized document as a Config, read as if it were `examples/<name>.toml` (so
    `{config_dir}` is `examples/`, where the example's own files are)."""
    return parse_config(raw, source=example_path(name), environ=environ)


class ExampleChat:
    """The engine wired as `gonogo console` wires it (its store, the git resolver, the backends)
    behind the terminal chat, driven by console scripts; `say` returns what one script printed."""

    def __init__(self, raw: Mapping[str, Any], name: str) -> None:
        self.config = load_example(raw, name)
        self.out = io.StringIO()
        self.chat = ConsoleChat(out=self.out, channel=self.config.bot.channel, terminal=False)
        self.engine: Engine = build_engine(self.config, self.chat)
        self.engine.start()
        self.console = Console(self.engine, self.chat, channel=self.config.bot.channel)
        self._seen = 0

    def say(self, script: str, *, idle: bool = True) -> str:
        """Run the console `script` (its lines as typed) and return what was printed meanwhile.
        As `gonogo console` does, it waits for the engine to be idle at the end; `idle=False`
        returns once the last line is done (a deploy may still be running)."""
        if idle:
            self.console.run(io.StringIO(script), interactive=False)
        else:
            for line in filter(None, (raw.strip() for raw in script.splitlines())):
                self.chat.say(f"{self.console.user}> {line}")
                self.console.execute(line)
        text = self.out.getvalue()
        new, self._seen = text[self._seen :], len(text)
        return new

    def wait_for_text(self, text: str, timeout: float = 30.0) -> str:
        """The transcript once it holds `text` (what the bot says after a state changes, such as
        a window's end, is printed by the worker a moment later)."""
        return wait_for(lambda: self.transcript if text in self.transcript else "", timeout, what=repr(text))

    @property
    def transcript(self) -> str:
        """Everything printed so far."""
        return self.out.getvalue()

    def close(self, grace: float = 5.0) -> None:
        """Stop the engine as SIGTERM does (a running step gets `grace` seconds to finish, then
        it is stopped and its deploy recorded as interrupted), and close the store."""
        self.engine.shutdown(wait=True, grace=grace)
        self.engine.store.close()

    def __enter__(self) -> ExampleChat:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
