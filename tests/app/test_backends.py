"""Backends built from the config: where the SSH and local backends keep the step journal."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.app.backends import backend_factory, ssh_backend_for
from bot.config import parse_config
from runners.backends.local import LocalBackend
from runners.backends.printer import PrinterBackend

CONFIG = """
[bot]
data_dir = "{data}"
[ssh]
user = "deploy"
[environments.prod]
backend = "ssh"
hosts = [{{ name = "app1", address = "10.0.0.5" }}]
deploy_to = "{{data_dir}}/srv/{{env}}"
keep_releases = 4
[[environments.prod.steps.deploy]]
name = "ship"
run = "true"
"""


def test_the_journal_lives_under_the_rendered_deploy_to(tmp_path: Path) -> None:
    text = CONFIG.format(data=tmp_path / "var")
    config = parse_config(tomllib.loads(text), source=tmp_path / "gonogo.toml", environ={})
    backend = ssh_backend_for(config, config.environments["prod"])
    assert backend.journal_root == f"{config.bot.data_dir}/srv/prod/.gonogo/journal"  # type: ignore[attr-defined]
    assert backend.journal_keep == 5  # type: ignore[attr-defined]  # the releases kept, and the one under way


def test_a_local_environment_keeps_its_journal_in_the_data_dir(tmp_path: Path) -> None:
    text = CONFIG.format(data=tmp_path / "var").replace('backend = "ssh"', 'backend = "local"')
    config = parse_config(tomllib.loads(text), source=tmp_path / "gonogo.toml", environ={})
    backend = backend_factory(config)(config.environments["prod"], False)
    assert isinstance(backend, LocalBackend)
    assert backend.journal_root == str(tmp_path / "var" / "journal" / "prod")
    assert backend.journal_keep == 5
    assert isinstance(backend_factory(config)(config.environments["prod"], True), PrinterBackend)
