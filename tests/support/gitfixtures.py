"""Helpers to build real git repositories in temporary directories, for tests.

``make_remote(tmp_path)`` gives a bare "origin" plus a working clone with deterministic
commits (fixed author and dates), so shas are stable between runs::

    remote = make_remote(tmp_path)            # origin with one commit on "main"
    sha = remote.commit("add feature")        # commit in the clone (not pushed)
    remote.push()                             # push the current branch
    remote.tag("v1.0", annotated=True); remote.push_tags()

Also: ``hanging_git_server()`` (a git:// URL that accepts connections and never answers,
for fetch timeouts) and ``colliding_commits`` (two commits whose shas share a prefix).

Everything runs git with an isolated environment (no global/system config).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

AUTHOR_NAME = "Ada Tester"
AUTHOR_EMAIL = "ada@example.com"
BASE_EPOCH = 1_700_000_000
"""Commit n of a RemoteRepo is dated BASE_EPOCH + 60 * n (UTC)."""


def git_env(epoch: int | None = None) -> dict[str, str]:
    """An environment for running git isolated from the user's configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
        GIT_TERMINAL_PROMPT="0",
    )
    if epoch is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{epoch} +0000"
    return env


def run_git(*args: str, cwd: Path | None = None, epoch: int | None = None, input: bytes | None = None) -> str:
    """Run git (argument list, no shell) and return stdout; raise with stderr on failure."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(epoch),
        input=input,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout.decode()


@dataclass
class RemoteRepo:
    """A bare ``origin`` repository and a working clone ``work`` that pushes to it."""

    origin: Path
    work: Path
    default_branch: str = "main"
    ticks: int = field(default=0)

    @property
    def url(self) -> str:
        """The origin as a URL usable by git (a local path)."""
        return str(self.origin)

    def next_epoch(self) -> int:
        """Advance the fake clock by one minute and return it."""
        self.ticks += 1
        return BASE_EPOCH + 60 * self.ticks

    def git(self, *args: str) -> str:
        """Run git in the working clone (dated with the current fake time)."""
        return run_git(*args, cwd=self.work, epoch=BASE_EPOCH + 60 * self.ticks)

    def git_origin(self, *args: str) -> str:
        """Run git in the bare origin."""
        return run_git(f"--git-dir={self.origin}", *args)

    def rev(self, rev: str, *, in_origin: bool = False) -> str:
        """Full sha of ``rev`` (peeled to a commit) in the clone or in origin."""
        runner = self.git_origin if in_origin else self.git
        return runner("rev-parse", "--verify", f"{rev}^{{commit}}").strip()

    def commit(self, message: str, *, files: dict[str, str] | None = None) -> str:
        """Commit ``files`` (default: a line appended to history.txt) on the current branch."""
        epoch = self.next_epoch()
        if files is None:
            with (self.work / "history.txt").open("a") as f:
                f.write(f"{message}\n")
            files = {}
        for name, content in files.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        run_git("add", "--all", cwd=self.work)
        run_git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work, epoch=epoch)
        return self.rev("HEAD")

    def commits(self, n: int, prefix: str = "change") -> list[str]:
        """Make ``n`` commits; returns their shas, oldest first."""
        start = self.ticks
        return [self.commit(f"{prefix} {start + i + 1}") for i in range(n)]

    def checkout(self, branch: str, *, new: bool = False, start: str | None = None) -> None:
        """Switch the clone to ``branch`` (creating it from ``start`` when ``new``)."""
        if new:
            self.git("checkout", "--quiet", "-b", branch, *([start] if start else []))
        else:
            self.git("checkout", "--quiet", branch)

    def tag(
        self, name: str, rev: str = "HEAD", *, annotated: bool = False, message: str | None = None
    ) -> None:
        """Create a lightweight (default) or annotated tag in the clone (dated like the last commit)."""
        if annotated:
            self.git("tag", "-a", "-m", message or f"release {name}", name, rev)
        else:
            self.git("tag", name, rev)

    def push(self, *refspecs: str, force: bool = False) -> None:
        """Push refspecs (default: the current branch) to origin."""
        args = ["push", "--quiet"]
        if force:
            args.append("--force")
        self.git(*args, "origin", *(refspecs or ("HEAD",)))

    def push_tags(self) -> None:
        """Push every tag to origin."""
        self.git("push", "--quiet", "origin", "--tags")

    def force_rewrite(self, drop: int, message: str = "rewritten") -> str:
        """Drop the last ``drop`` commits of the current branch, commit, force-push. Returns new sha."""
        self.git("reset", "--quiet", "--hard", f"HEAD~{drop}")
        sha = self.commit(message)
        self.push(force=True)
        return sha

    def copy_to(self, base: Path) -> RemoteRepo:
        """A copy of origin and clone under ``base`` (much faster than rebuilding a fixture)."""
        origin, work = base / "origin.git", base / "work"
        shutil.copytree(self.origin, origin, symlinks=True)
        shutil.copytree(self.work, work, symlinks=True)
        copy = RemoteRepo(origin=origin, work=work, default_branch=self.default_branch, ticks=self.ticks)
        copy.git("remote", "set-url", "origin", str(origin))
        return copy

    def write_commit_object(self, raw: bytes) -> str:
        """Store a raw commit object in origin and return its sha."""
        return run_git(
            f"--git-dir={self.origin}", "hash-object", "-t", "commit", "-w", "--stdin", input=raw
        ).strip()


def make_remote(
    base: Path, *, default_branch: str = "main", first_message: str = "initial commit"
) -> RemoteRepo:
    """Create ``base/origin.git`` (bare) and ``base/work`` (clone) with one pushed commit."""
    origin = base / "origin.git"
    work = base / "work"
    run_git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(origin))
    run_git("init", "--quiet", f"--initial-branch={default_branch}", str(work))
    remote = RemoteRepo(origin=origin, work=work, default_branch=default_branch)
    remote.git("remote", "add", "origin", str(origin))
    remote.commit(first_message, files={"README": "hello\n"})
    remote.push()
    return remote


def _commit_bytes(tree: str, parent: str, message: str, epoch: int) -> bytes:
    ident = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {epoch} +0000"
    return (f"tree {tree}\nparent {parent}\nauthor {ident}\ncommitter {ident}\n\n{message}\n").encode()


def _object_sha(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


def colliding_commits(
    remote: RemoteRepo, *, prefix_len: int = 4, parent: str | None = None
) -> tuple[str, str]:
    """Create two commits in origin whose shas share their first ``prefix_len`` hex digits.

    Both are children of ``parent`` (default: origin's default branch) and are published as
    branches ``collide-a`` and ``collide-b``. Shas are computed in Python first (birthday
    search over commit messages), so this is fast and deterministic.
    """
    parent = parent or remote.rev(remote.default_branch, in_origin=True)
    tree = remote.git_origin("rev-parse", f"{parent}^{{tree}}").strip()
    epoch = BASE_EPOCH + 86_400
    seen: dict[str, bytes] = {}
    for i in range(1_000_000):
        raw = _commit_bytes(tree, parent, f"collision candidate {i}", epoch)
        key = _object_sha("commit", raw)[:prefix_len]
        if key in seen:
            a = remote.write_commit_object(seen[key])
            b = remote.write_commit_object(raw)
            assert a[:prefix_len] == b[:prefix_len] and a != b
            remote.git_origin("update-ref", "refs/heads/collide-a", a)
            remote.git_origin("update-ref", "refs/heads/collide-b", b)
            return a, b
        seen[key] = raw
    raise AssertionError("no collision found")  # pragma: no cover


@contextmanager
def hanging_git_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers.

    Yields a ``git://127.0.0.1:PORT/repo`` URL: fetching from it hangs until killed.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            conns.append(conn)  # keep it open, say nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"git://127.0.0.1:{port}/repo"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in conns:
            conn.close()
        server.close()
