"""Deploy tags: creating annotated tags in the mirror and pushing them to a remote."""

from __future__ import annotations

from bot.source.errors import GitError, InvalidRef, not_found
from bot.source.gitdir import NET_ENV, GitDir, git_message, redact_url
from bot.source.rules import HEADS, TAGS, short_name, validate_ref


class Tagging(GitDir):
    """Mirror's deploy tags: annotated tags made in the mirror, pushed to a remote on request."""

    fetch_timeout: float

    def create_tag(
        self,
        name: str,
        sha: str,
        message: str,
        *,
        tagger_name: str = "gonogo",
        tagger_email: str = "gonogo@localhost",
    ) -> None:
        """Create the annotated tag ``name`` on commit ``sha`` in the mirror.

        A no-op if the tag already exists on that commit; GitError if it exists elsewhere or a
        branch has the same name. The next fetch prunes it unless it matches ``keep_tags`` or
        was pushed to the mirrored remote.
        """
        validate_ref(name)
        if name.startswith("refs/"):
            raise InvalidRef(f"give the short tag name, not '{name}'")
        with self._lock:
            self._require_mirror()
            commit = self._sha_arg(sha)
            refs = self._refs()
            if HEADS + name in refs:
                raise GitError(f"cannot create tag '{name}': a branch has that name")
            if TAGS + name in refs:
                existing = self._peel(TAGS + name)
                if existing == commit:
                    return
                shown = existing[:12] if existing else "a non-commit"
                raise GitError(f"tag '{name}' already exists on {shown}, not on {commit[:12]}")
            env = {
                "GIT_COMMITTER_NAME": tagger_name,
                "GIT_COMMITTER_EMAIL": tagger_email,
            }
            status, _, err = self._run(
                "tag",
                "--annotate",
                f"--message={message or name}",
                "--end-of-options",
                name,
                commit,
                env=env,
            )
            if status != 0:
                raise GitError(f"cannot create tag '{name}': {git_message(err)}")

    def push_tag(self, name: str, remote: str) -> None:
        """Push tag ``name`` from the mirror to ``remote`` (URL or path).

        Runs with ``fetch_timeout``; any failure (rejected, unreachable, timeout) raises
        GitError carrying git's message.
        """
        validate_ref(name)
        if not remote or remote.startswith("-") or not remote.isprintable():
            raise GitError(f"invalid remote {remote!r}")
        with self._lock:
            self._require_mirror()
            if TAGS + name not in self._refs():
                raise not_found(
                    f"tag '{name}'", name, [short_name(r) for r in self._refs() if r.startswith(TAGS)]
                )
            status, _, err = self._run(
                "push",
                "--quiet",
                "--end-of-options",
                remote,
                f"{TAGS}{name}:{TAGS}{name}",
                timeout=self.fetch_timeout,
                env=NET_ENV,
            )
            if status == 0:
                return
            where = redact_url(remote)
            if err.startswith("Timeout:") or status == -9:
                raise GitError(f"push of tag '{name}' to {where} timed out after {self.fetch_timeout:g}s")
            raise GitError(f"push of tag '{name}' to {where} failed: {git_message(err)}")
