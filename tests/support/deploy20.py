"""A realistic 20-step deploy for fleets of loopback hosts: what bench/fanout.py times and what
tests/runners/test_fanout_deploy.py checks on a smaller fleet.

Capistrano's shape: a release directory, the artifact uploaded once per host over SFTP (1 MB,
incompressible), its checksum, extraction, shared links, the `current` symlink switched, the
app restarted and its health checked, old releases pruned. Every host is a directory
`<root>/<host>` on this machine (all loopback hosts share its filesystem).

    artifact = make_artifact(tmp)            # the tarball, its sha256
    steps = deploy_steps()                   # 20 Steps, one of them an upload
    variables = deploy_variables(root, "20260101", artifact)
    problems = check_host(root / "app1", "20260101", artifact)   # [] when the deploy took
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import tarfile
from dataclasses import dataclass
from pathlib import Path

from runners import Step, Upload

ARTIFACT_BYTES = 1 << 20
#: The app in the artifact: `--check`, `restart <dir>` (a detached process with a pid file), `status <dir>`.
APP = """#!/bin/sh
case "$1" in
  --check) exit 0 ;;
  restart)
    [ -f "$2/app.pid" ] && kill "$(cat "$2/app.pid")" 2>/dev/null
    nohup sleep 600 >/dev/null 2>&1 </dev/null &
    echo $! > "$2/app.pid" ;;
  status) kill -0 "$(cat "$2/app.pid")" ;;
  *) exit 2 ;;
esac
"""


@dataclass(frozen=True)
class Artifact:
    """The release tarball on this machine, its sha256, and the payload's sha256."""

    path: Path
    sha256: str
    payload_sha256: str


def make_artifact(directory: Path, size: int = ARTIFACT_BYTES) -> Artifact:
    """A gzipped tarball of `bin/app` and `size` random bytes (`data/payload`) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = os.urandom(size)
    path = directory / "artifact.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data, mode in (("bin/app", APP.encode(), 0o755), ("data/payload", payload, 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return Artifact(path, hashlib.sha256(path.read_bytes()).hexdigest(), hashlib.sha256(payload).hexdigest())


_R = "{root}/{host}/releases/{release}"  # the release directory
#: (name, command) of every step but the upload, which is the second.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("release dir", f"mkdir -p {_R} {{root}}/{{host}}/shared/config {{root}}/{{host}}/shared/log"),
    ("checksum", f"cd {_R} && printf '%s *artifact.tgz\\n' {{sha}} | sha256sum -c --quiet -"),
    ("extract", f"tar -xzf {_R}/artifact.tgz -C {_R}"),
    ("remove tarball", f"rm {_R}/artifact.tgz"),
    ("revision", f"echo {{sha}} > {_R}/REVISION"),
    ("link config", f"ln -sfn {{root}}/{{host}}/shared/config {_R}/config"),
    ("link log", f"ln -sfn {{root}}/{{host}}/shared/log {_R}/log"),
    ("tmp dir", f"mkdir -p {_R}/tmp"),
    ("permissions", f"chmod -R go-w {_R}"),
    ("app present", f"test -x {_R}/bin/app"),
    ("config check", f"{_R}/bin/app --check"),
    (
        "switch current",
        f"ln -sfn {_R} {{root}}/{{host}}/current.tmp && mv -T {{root}}/{{host}}/current.tmp {{root}}/{{host}}/current",
    ),
    ("current is the release", f"readlink {{root}}/{{host}}/current | grep -qxF {_R}"),
    ("restart", "{root}/{host}/current/bin/app restart {root}/{host}"),
    ("health", "{root}/{host}/current/bin/app status {root}/{host}"),
    ("prune releases", "cd {root}/{host}/releases && ls -1t | tail -n +6 | xargs -r rm -rf"),
    ("record", "echo {release} >> {root}/{host}/deploy.log"),
    ("disk use", "du -sk {root}/{host}/current/"),
    ("revision served", "cat {root}/{host}/current/REVISION"),
)
UPLOAD = Upload(source="{artifact}", destination=f"{_R}/artifact.tgz")


def deploy_steps(timeout: float | None = 120.0) -> list[Step]:
    """The 20 steps: the release directory, the upload, then the 18 other commands."""
    steps = [Step(name, command, timeout=timeout) for name, command in COMMANDS]
    return [steps[0], Step("upload artifact", "", upload=UPLOAD), *steps[1:]]


def deploy_variables(root: Path, release: str, artifact: Artifact) -> dict[str, object]:
    """The template variables of the steps (`{host}` is the pipeline's)."""
    return {"root": str(root), "release": release, "sha": artifact.sha256, "artifact": str(artifact.path)}


def check_host(home: Path, release: str, artifact: Artifact) -> list[str]:
    """What is wrong on one host's directory after a deploy of `release` (nothing: [])."""
    problems = []
    current = home / "current"
    if not current.is_symlink() or os.readlink(current) != str(home / "releases" / release):
        problems.append(f"{home.name}: current does not point at release {release}")
    payload = current / "data" / "payload"
    if not payload.exists() or hashlib.sha256(payload.read_bytes()).hexdigest() != artifact.payload_sha256:
        problems.append(f"{home.name}: the payload is missing or corrupt")
    revision = current / "REVISION"
    if not revision.exists() or revision.read_text().strip() != artifact.sha256:
        problems.append(f"{home.name}: REVISION is not the artifact's sha256")
    if (home / "releases" / release / "artifact.tgz").exists():
        problems.append(f"{home.name}: the tarball was left behind")
    if not _alive(home / "app.pid"):
        problems.append(f"{home.name}: the app is not running")
    log = (home / "deploy.log").read_text().split() if (home / "deploy.log").exists() else []
    if log.count(release) != 1:
        problems.append(f"{home.name}: the deploy was recorded {log.count(release)} times")
    return problems


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def stop_apps(root: Path) -> None:
    """Stop the app processes the deploys started under `root`."""
    for pid_file in root.glob("*/app.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


__all__ = [
    "ARTIFACT_BYTES",
    "COMMANDS",
    "UPLOAD",
    "Artifact",
    "check_host",
    "deploy_steps",
    "deploy_variables",
    "make_artifact",
    "stop_apps",
]
