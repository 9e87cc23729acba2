"""The mirror's history: changelogs between commits, ancestry, which branches hold a commit."""

from __future__ import annotations

from bot.source.changelog import Changelog
from bot.source.errors import GitError, InvalidRef, RefNotFound, not_found
from bot.source.gitdir import GitDir, git_message
from bot.source.rules import HEADS, HEX_RE, short_name, validate_ref


class History(GitDir):
    """Mirror's history queries: changelogs, ancestry, and the branches holding a commit."""

    def changelog(self, from_sha: str | None, to_sha: str, *, limit: int = 20) -> Changelog:
        """The commits deploying ``to_sha`` over the deployed ``from_sha`` would ship.

        ``from_sha`` None is a first deploy. See :class:`Changelog` and the :mod:`bot.source.mirror` docstring
        for ``behind`` and ``unknown_base``.
        """
        if from_sha is not None and (not isinstance(from_sha, str) or not HEX_RE.fullmatch(from_sha)):
            raise InvalidRef(f"invalid deployed sha {from_sha!r}: expected 4 to 40 hex digits")
        self._require_mirror()
        to = self._sha_arg(to_sha, "target commit")
        if from_sha is None:
            return Changelog(
                commits=tuple(self._log(to, limit=limit)),
                total=self._count(to),
                behind=False,
                behind_count=0,
                first_deploy=True,
                unknown_base=False,
            )
        base = self._peel(from_sha.lower())
        if base is None:
            return Changelog(
                commits=tuple(self._log(to, limit=limit)),
                total=self._count(to),
                behind=False,
                behind_count=0,
                first_deploy=False,
                unknown_base=True,
            )
        unknown = not self._reachable(base)
        if base == to:
            return Changelog((), 0, False, 0, False, unknown)
        behind_count = self._count(f"^{to}", base)
        return Changelog(
            commits=tuple(self._log(f"^{base}", to, limit=limit)),
            total=self._count(f"^{base}", to),
            behind=self._is_ancestor(to, base),
            behind_count=behind_count,
            first_deploy=False,
            unknown_base=unknown,
        )

    def _is_ancestor(self, a: str, b: str) -> bool:
        status, _, err = self._run("merge-base", "--is-ancestor", "--end-of-options", a, b)
        if status in (0, 1):
            return status == 0
        raise GitError(f"git merge-base failed: {git_message(err)}")

    def is_ancestor(self, a: str, b: str) -> bool:
        """Is commit ``a`` an ancestor of (or equal to) commit ``b``? Both are hex shas.

        Raises RefNotFound if either commit is not in the mirror.
        """
        self._require_mirror()
        return self._is_ancestor(self._sha_arg(a), self._sha_arg(b))

    def contains(self, branch: str, sha: str) -> bool:
        """Is commit ``sha`` reachable from ``branch``? False if the commit is unknown.

        Raises RefNotFound (with suggestions) if the branch does not exist.
        """
        validate_ref(branch)
        self._require_mirror()
        name = short_name(branch)
        refs = self._refs()
        if HEADS + name not in refs:
            branches = [short_name(r) for r in refs if r.startswith(HEADS)]
            raise not_found(f"branch '{name}'", name, branches)
        try:
            commit = self._sha_arg(sha)
        except RefNotFound:
            return False
        return self._is_ancestor(commit, HEADS + name)

    def branches(self) -> list[str]:
        """Every mirrored branch (short names, sorted)."""
        return sorted(short_name(r) for r in self._refs() if r.startswith(HEADS))

    def branches_containing(self, sha: str) -> list[str]:
        """The mirrored branches (short names, sorted) from which commit ``sha`` is reachable.

        Empty when the commit is unknown. One git call, however many branches there are.
        """
        self._require_mirror()
        try:
            commit = self._sha_arg(sha)
        except RefNotFound:
            return []
        out = self._out("for-each-ref", "--format=%(refname)", f"--contains={commit}", HEADS)
        return sorted(short_name(line.strip()) for line in out.splitlines() if line.strip())
