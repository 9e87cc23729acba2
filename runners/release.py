"""Capistrano's release layout, as shell command strings for any backend.

    <deploy_to>/releases/<id>/    one directory per release
    <deploy_to>/current -> releases/<id>

`switch_current` swaps the `current` symlink atomically (a new link renamed over the old one,
so there is never a moment without `current`); rolling back is switching to an older release;
`prune_releases` keeps the newest N releases and never the one `current` points to. Every path
in the returned commands is shell-quoted; release ids must be plain names (no `/`, not `..`).
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass

q = shlex.quote


def check_release_id(release_id: str | int) -> str:
    """Return the release id as a string, or raise ValueError if it is not a plain name."""
    rid = str(release_id)
    if not rid or rid in (".", "..") or "/" in rid or "\0" in rid or "\n" in rid:
        raise ValueError(f"invalid release id {rid!r}: must be a plain directory name")
    return rid


@dataclass(frozen=True)
class ReleaseLayout:
    """Where releases live under `deploy_to`."""

    deploy_to: str

    @property
    def releases_dir(self) -> str:
        """`<deploy_to>/releases`."""
        return posixpath.join(self.deploy_to, "releases")

    @property
    def current_dir(self) -> str:
        """`<deploy_to>/current` (the symlink to the live release)."""
        return posixpath.join(self.deploy_to, "current")

    def release_dir(self, release_id: str | int) -> str:
        """`<deploy_to>/releases/<id>`."""
        return posixpath.join(self.releases_dir, check_release_id(release_id))

    def variables(self, release_id: str | int) -> dict[str, str]:
        """Template variables for step commands: deploy_to, releases_dir, release_dir, current_dir."""
        return {
            "deploy_to": self.deploy_to,
            "releases_dir": self.releases_dir,
            "release_dir": self.release_dir(release_id),
            "current_dir": self.current_dir,
        }


def prepare_release(deploy_to: str, release_id: str | int) -> str:
    """Command creating `releases/<id>` (and its parents)."""
    return f"mkdir -p {q(ReleaseLayout(deploy_to).release_dir(release_id))}"


def switch_current(deploy_to: str, release_id: str | int) -> str:
    """Command pointing `current` at `releases/<id>` atomically; fails if the release is missing.

    `ln -sfn releases/<id> current.tmp-<id> && mv -T current.tmp-<id> current`: the link target
    is relative, so the tree can be moved or mounted elsewhere.
    """
    layout = ReleaseLayout(deploy_to)
    rid = check_release_id(release_id)
    tmp = posixpath.join(deploy_to, f"current.tmp-{rid}")
    return (
        f"test -d {q(layout.release_dir(rid))} && "
        f"ln -sfn {q('releases/' + rid)} {q(tmp)} && "
        f"mv -T {q(tmp)} {q(layout.current_dir)}"
    )


def rollback_to(deploy_to: str, release_id: str | int) -> str:
    """Command making an earlier release current again (same as `switch_current`)."""
    return switch_current(deploy_to, release_id)


def prune_releases(deploy_to: str, keep: int) -> str:
    """Command removing the oldest release directories beyond the newest `keep`.

    Releases are ordered by name in version order (`sort -V`: numeric ids and timestamps both
    sort right); the release `current` points to is never removed, even when it is old (after
    a rollback). Runs in a subshell and always succeeds when there is nothing to prune.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    layout = ReleaseLayout(deploy_to)
    oldest = f"awk -v keep={int(keep)} '{{a[NR] = $0}} END {{for (i = 1; i <= NR - keep; i++) print a[i]}}'"
    return (
        f"(cd {q(layout.releases_dir)} 2>/dev/null || exit 0; "
        f'cur=$(basename "$(readlink {q(layout.current_dir)})" 2>/dev/null); '
        f"ls -1 | sort -V | {oldest} | "
        'while IFS= read -r r; do if [ -d "$r" ] && [ "$r" != "$cur" ]; then rm -rf -- "$r"; fi; done)'
    )
