"""The demo's git history: a small bare repository with tags v1, v2, v3 the demo's cards read.

    python3 demo/history.py PATH              # create it at PATH (nothing to do if it is there)
    python3 demo/history.py --config FILE     # create it where FILE's [repo] url points

The bundled demo's `[repo] url` is `{data_dir}/demo-repo.git`; `./scripts/run.sh` creates it
on the first run, so every card shows the commit and the changelog since what runs now. The
history is the same everywhere (fixed authors and dates, so the same shas), written by one
`git fast-import`; creating it is idempotent and takes a few milliseconds. It is built beside
PATH and renamed into place, so a half-written repository is never seen.

Only the standard library and git: it runs before gonogo is installed, and tests use it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: (author, subject, tag) of each commit, oldest first; `main` ends at the last one.
COMMITS: tuple[tuple[str, str, str | None], ...] = (
    ("Alice", "Serve /health with the running version", "v1"),
    ("Bob", "Answer /version with the release name", None),
    ("Carol", "Report failing health while UNHEALTHY is present", "v2"),
    ("Alice", "Say which port the app listens on at start", None),
    ("Bob", "Refuse to start when the port is already taken", None),
    ("Carol", "Keep request logs out of the terminal", "v3"),
    ("Alice", "Draft a /metrics endpoint (not released yet)", None),
)
TAGS = tuple(tag for _, _, tag in COMMITS if tag)
#: 2026-11-02 09:00 UTC; each commit a day later.
START = 1793610000
DAY = 86400
#: Git as nobody configured it: no user or system config (signing, hooks, default branch).
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def fast_import_stream() -> bytes:
    """The whole history as a `git fast-import` stream: commits on main, lightweight tags."""
    out = bytearray()
    changes: list[str] = []
    for n, (author, subject, tag) in enumerate(COMMITS, 1):
        when = START + (n - 1) * DAY
        who = f"{author} <{author.lower()}@demo.example> {when} +0000"
        changes.append(f"- {subject}" + (f" ({tag})" if tag else ""))
        out += b"commit refs/heads/main\nmark :%d\n" % n
        out += f"author {who}\ncommitter {who}\n".encode()
        out += _data(subject + "\n")
        if n > 1:
            out += b"from :%d\n" % (n - 1)
        out += b"M 100644 inline CHANGES.md\n" + _data(
            "# The demo app's changes\n\n" + "\n".join(changes) + "\n"
        )
        if n == 1:
            readme = "# demo app\n\nThe tiny HTTP app gonogo's demo deploys (see demo/app in gonogo).\n"
            out += b"M 100644 inline README.md\n" + _data(readme)
        if tag:
            out += f"reset refs/tags/{tag}\nfrom :{n}\n\n".encode()
    return bytes(out)


def is_demo_repo(path: Path) -> bool:
    """Is `path` a git repository holding the demo's tags?"""
    refs = [f"refs/tags/{tag}" for tag in TAGS] + ["refs/heads/main"]
    if not (path / "HEAD").is_file():
        return False
    proc = subprocess.run(
        ["git", f"--git-dir={path}", "show-ref", "--verify", "--quiet", *refs],
        capture_output=True,
        env={**os.environ, **GIT_ENV},
    )
    return proc.returncode == 0


def ensure_demo_repo(path: Path) -> bool:
    """Create the demo repository at `path` unless it is there; True when it was created.

    Raises RuntimeError when git fails, or when `path` exists and is something else.
    """
    path = Path(path)
    if is_demo_repo(path):
        return False
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RuntimeError(f"{path} exists and is not the demo repository: move it away or pick another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **GIT_ENV}
    with tempfile.TemporaryDirectory(prefix=".demo-repo-", dir=path.parent) as tmp:
        building = Path(tmp) / "repo.git"
        for args, stdin in (
            (
                [
                    "git",
                    "init",
                    "--quiet",
                    "--bare",
                    "--initial-branch=main",
                    "--object-format=sha1",
                    str(building),
                ],
                None,
            ),
            (["git", f"--git-dir={building}", "fast-import", "--quiet"], fast_import_stream()),
        ):
            proc = subprocess.run(args, input=stdin, capture_output=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"{' '.join(args[:3])} failed: {proc.stderr.decode(errors='replace').strip()}"
                )
        try:
            if path.is_dir():
                path.rmdir()  # an empty directory is taken over
            building.rename(path)
        except OSError:
            if not is_demo_repo(path):  # someone else made it meanwhile: fine; anything else is not
                raise
            shutil.rmtree(building, ignore_errors=True)
    return True


def _repo_path_of(config_file: str) -> Path:
    """Where the config's `[repo] url` points (loaded with gonogo's own config loader)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bot.config import ConfigError, load_config

    try:
        url = load_config(config_file).repo.url
    except ConfigError as exc:
        raise SystemExit(f"demo/history.py: {exc}") from None
    if not url or "://" in url or not Path(url).is_absolute():
        raise SystemExit(
            f"demo/history.py: {config_file} has no local [repo] url to create the demo history at"
        )
    return Path(url)


def main(argv: list[str]) -> int:
    """Create the demo history at PATH (or at `--config FILE`'s repo url)."""
    if len(argv) == 2 and argv[0] == "--config":
        path = _repo_path_of(argv[1])
    elif len(argv) == 1 and not argv[0].startswith("-"):
        path = Path(argv[0])
    else:
        print("usage: demo/history.py PATH | --config FILE", file=sys.stderr)
        return 2
    try:
        created = ensure_demo_repo(path)
    except (RuntimeError, OSError) as exc:
        print(f"demo/history.py: {exc}", file=sys.stderr)
        return 1
    if created:
        print(f"Created the demo's git history (tags {', '.join(TAGS)}) at {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
