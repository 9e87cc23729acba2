"""Config loading and `gonogo config check`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads() -> None:
    config = load_config(ROOT / "config.example.toml", environ={})
    assert set(config.environments) == {"demo", "prod"}
    prod = config.environments["prod"]
    assert prod.approvals.required == 2
    assert prod.strategy.kind == "canary" and prod.strategy.batch_percent == 50
    assert prod.strategy.pause == 30.0
    assert [s.name for s in prod.stage("deploy")] == ["fetch release", "migrate", "switch and restart"]
    assert prod.stage("pre_deploy")[0].once
    assert config.bot.data_dir == (ROOT / "var").resolve()


def test_data_dir_and_store_come_from_the_environment(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.example.toml", environ={"GONOGO_DATA_DIR": str(tmp_path)})
    assert config.bot.data_dir == tmp_path
    assert config.bot.store_url == f"sqlite:///{tmp_path / 'gonogo.db'}"


def test_a_local_repo_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    def url(value: str) -> str | None:
        text = f'[bot]\ndata_dir = "state"\n[repo]\nurl = "{value}"\n' + MINIMAL_ENV
        return parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={}).repo.url

    assert url("{data_dir}/app.git") == str(tmp_path / "state" / "app.git")
    assert url("repos/app.git") == str(tmp_path / "repos" / "app.git")
    assert url("{config_dir}/../app.git") == str(tmp_path / ".." / "app.git")
    assert url("/srv/git/app.git") == "/srv/git/app.git"
    for remote in ("git@github.com:acme/shop.git", "https://git.example/shop.git", "file:///srv/x.git"):
        assert url(remote) == remote  # URLs and scp-like addresses are left as they are
    example = load_config(ROOT / "config.example.toml", environ={"GONOGO_DATA_DIR": str(tmp_path)})
    assert example.repo.url == str(tmp_path / "demo-repo.git")  # the demo's history follows data_dir


MINIMAL_ENV = """
[environments.demo]
backend = "local"
hosts = ["localhost"]
[[environments.demo.steps.deploy]]
name = "noop"
run = "true"
"""


BAD = """
[bot]
workers = 0
colour = "blue"

[environments.Prod]
hosts = []
timezone = "Mars/Olympus"
windows = ["Fri-Mon 25:00-26:00"]
[environments.Prod.approvals]
required = 0
[environments.Prod.strategy]
kind = "yolo"
batch_size = "150%"
[[environments.Prod.steps.deploy]]
name = "x"
run = "echo {nope}"
[[environments.Prod.steps.deploy]]
run = 42
"""


def test_every_problem_is_reported_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(BAD), environ={})
    problems = "\n".join(info.value.problems)
    for expected in (
        "bot.workers: must be >= 1",
        "bot.colour: unknown key",
        "environments.Prod: environment names are lowercase",
        "environments.Prod.hosts: at least one host is required",
        "environments.Prod.timezone: unknown time zone 'Mars/Olympus'",
        "environments.Prod.windows[0]:",
        "environments.Prod.approvals.required: must be >= 1",
        "environments.Prod.strategy.kind: must be 'parallel', 'sequential' or 'canary'",
        "environments.Prod.strategy.batch_size: must be a number of hosts or a percentage",
        "environments.Prod.steps.deploy[0].run: unknown variable {nope}",
        "environments.Prod.steps.deploy[1].name: required",
        "environments.Prod.steps.deploy[1].run: must be a string, not an integer",
    ):
        assert expected in problems, f"{expected!r} not in\n{problems}"


def test_config_check_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(ROOT / "config.example.toml")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "OK (2 environment(s): demo, prod)" in ok.stdout
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text(BAD)
    bad = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(bad_file)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "bot.workers: must be >= 1" in bad.stdout and "Traceback" not in bad.stdout + bad.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[bot\n")
    res = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(broken)], capture_output=True, text=True
    )
    assert res.returncode == 1 and "not valid TOML" in res.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "file not found" in missing.stdout
