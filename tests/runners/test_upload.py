"""Upload steps: a file copied to each host (local and dry-run backends here; SSH/SFTP in
test_fanout_deploy.py), paths as templates that never climb out with `..`; and their config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config
from runners import Host, Pipeline, Step, Strategy, TemplateError, Upload, render_path
from runners.backends import LocalBackend, PrinterBackend

HOSTS = [Host("h1"), Host("h2")]


def upload_step(source: str, destination: str) -> Step:
    return Step("upload", "", upload=Upload(source, destination))


def test_an_upload_step_copies_the_file_for_each_host(tmp_path: Path) -> None:
    (tmp_path / "app.tgz").write_bytes(b"x" * 3000)
    pipeline = Pipeline(LocalBackend(), HOSTS, Strategy(), {"dir": str(tmp_path), "ref": "v1"})
    result = pipeline.run_stage("deploy", [upload_step("{dir}/app.tgz", "{dir}/{host}-{ref}.tgz")])
    assert result.ok
    assert (tmp_path / "h1-v1.tgz").read_bytes() == (tmp_path / "h2-v1.tgz").read_bytes() == b"x" * 3000
    [step] = result.steps
    assert [h.output for h in step.hosts] == [
        f"uploaded {tmp_path}/app.tgz (3,000 bytes) to {tmp_path}/{name}-v1.tgz\n" for name in ("h1", "h2")
    ]


def test_a_missing_artifact_fails_the_step_on_each_host_saying_which_file(tmp_path: Path) -> None:
    pipeline = Pipeline(LocalBackend(), HOSTS, Strategy(), {"dir": str(tmp_path)})
    result = pipeline.run_stage("deploy", [upload_step("{dir}/nope.tgz", "{dir}/{host}.tgz")])
    assert result.failed_step is not None
    [first, _] = result.failed_step.hosts
    assert first.status == "error"
    assert first.describe().startswith(f"h1: upload of {tmp_path}/nope.tgz failed:")
    assert "No such file" in first.describe()


def test_upload_paths_take_values_as_they_are_but_never_climb_out() -> None:
    assert render_path("/srv/{ref} x/{host}", {"ref": "v1 $(id)", "host": "h1"}) == "/srv/v1 $(id) x/h1"
    for ref in ("../../etc", "a/../b", "..", "v1\nrm"):
        with pytest.raises(TemplateError, match="refusing upload path"):
            render_path("/srv/{ref}/app.tgz", {"ref": ref})
    pipeline = Pipeline(LocalBackend(), HOSTS[:1], Strategy(), {"ref": "../../etc"})
    result = pipeline.run_stage("deploy", [upload_step("/tmp/a", "/srv/{ref}/passwd")])
    assert result.failed_step is not None and "refusing upload path" in result.failed_step.hosts[0].describe()


def test_a_dry_run_prints_the_upload_instead_of_copying(tmp_path: Path) -> None:
    printer = PrinterBackend(local=True)
    pipeline = Pipeline(printer, HOSTS, Strategy(), {"dir": str(tmp_path)})
    (tmp_path / "a.tgz").write_text("a")
    assert pipeline.run_stage("deploy", [upload_step("{dir}/a.tgz", "{dir}/{host}.tgz")]).ok
    assert f"[h1] put {tmp_path}/a.tgz -> {tmp_path}/h1.tgz" in "\n".join(printer.lines)
    assert not (tmp_path / "h1.tgz").exists()


CONFIG = """
[environments.prod]
backend = "ssh"
hosts = ["h1"]
[[environments.prod.steps.deploy]]
name = "upload"
{step}
"""


def steps_of(step: str, tmp_path: Path) -> list[Step]:
    config = parse_config(
        tomllib.loads(CONFIG.format(step=step)), source=tmp_path / "gonogo.toml", environ={}
    )
    return list(config.environments["prod"].stage("deploy"))


def problems(step: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(CONFIG.format(step=step)), environ={})
    return err.value.problems


def test_an_upload_step_reads_upload_and_to_relative_to_the_config_file(tmp_path: Path) -> None:
    [step] = steps_of('upload = "build/app-{sha}.tgz"\nto = "{release_dir}/app.tgz"', tmp_path)
    assert step.upload == Upload("{config_dir}/build/app-{sha}.tgz", "{release_dir}/app.tgz")
    [absolute] = steps_of('upload = "/srv/build/app.tgz"\nto = "/tmp/app.tgz"', tmp_path)
    assert absolute.upload == Upload("/srv/build/app.tgz", "/tmp/app.tgz")


def test_upload_step_mistakes_are_named_with_their_key_path() -> None:
    key = "environments.prod.steps.deploy[0]"
    assert problems('upload = "a.tgz"') == [f"{key}.to: required for an upload step"]
    assert problems('upload = "a.tgz"\nto = "/x"\nrun = "true"') == [
        f"{key}.upload: a step either runs a command or uploads a file: not both"
    ]
    assert problems('upload = "a.tgz"\nto = "/x"\nsudo = true') == [
        f"{key}.sudo: an upload runs as the SSH user: it cannot use sudo"
    ]
    [unknown] = problems('upload = "{nope}.tgz"\nto = "/x"')
    assert unknown.startswith(f"{key}.upload: unknown variable {{nope}}")
    assert problems('to = "/x"') == [f"{key}.upload: required for an upload step"]
