"""Resolving a branch, tag or (abbreviated) sha to a commit of the mirror."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.source.errors import AmbiguousRef, GitError, not_found
from bot.source.gitdir import GitDir
from bot.source.rules import HEADS, HEX_RE, TAGS, RefKind, short_name, validate_ref


@dataclass(frozen=True)
class ResolvedRef:
    """A ref resolved to a commit."""

    ref: str
    sha: str
    kind: RefKind
    committed_at: datetime
    subject: str
    author: str

    @property
    def short(self) -> str:
        """The first 7 characters of the sha."""
        return self.sha[:7]


class Resolving(GitDir):
    """Mirror's ref resolution: branch, tag or sha prefix to a commit, with suggestions or candidates."""

    def resolve(self, ref: str | None, default_branch: str) -> ResolvedRef:
        """Resolve ``ref`` (None: ``default_branch``) to a commit.

        Accepts branch and tag names, ``refs/heads/…``/``refs/tags/…`` and full or
        abbreviated (>= 4 hex) shas. Raises InvalidRef, RefNotFound (with suggestions) or
        AmbiguousRef.
        """
        if ref is None:
            return self._resolve_default(default_branch)
        validate_ref(ref)
        self._require_mirror()
        refs = self._refs()
        if ref.startswith((HEADS, TAGS)):
            return self._resolve_full_name(ref, refs)
        return self._resolve_short_name(ref, refs)

    def _resolve_default(self, default_branch: str) -> ResolvedRef:
        """The default branch, which must exist."""
        validate_ref(default_branch)
        self._require_mirror()
        name = short_name(default_branch)
        refs = self._refs()
        if HEADS + name not in refs:
            branches = [short_name(r) for r in refs if r.startswith(HEADS)]
            raise not_found(f"default branch '{name}'", name, branches)
        return self._resolved(name, HEADS + name, "branch")

    def _resolve_full_name(self, ref: str, refs: dict[str, str]) -> ResolvedRef:
        """``refs/heads/…`` or ``refs/tags/…``: exactly that branch or tag."""
        kind: RefKind = "branch" if ref.startswith(HEADS) else "tag"
        if ref not in refs:
            raise not_found(f"{kind} '{short_name(ref)}'", short_name(ref), self._names(refs))
        return self._resolved(ref, ref, kind)

    def _resolve_short_name(self, ref: str, refs: dict[str, str]) -> ResolvedRef:
        """A branch or tag name, or a sha prefix; a ref that could be more than one is refused."""
        named: list[tuple[str, RefKind]] = []
        if HEADS + ref in refs:
            named.append((HEADS + ref, "branch"))
        if TAGS + ref in refs:
            named.append((TAGS + ref, "tag"))
        shas = self._commits_with_prefix(ref) if HEX_RE.fullmatch(ref) else []

        if len(named) == 2:
            raise AmbiguousRef(
                f"ref '{ref}' is both a branch and a tag; say 'refs/heads/{ref}' or 'refs/tags/{ref}'",
                [r for r, _ in named],
            )
        if named and shas:
            raise AmbiguousRef(
                f"ref '{ref}' is both a {named[0][1]} and the start of commit {shas[0][:12]}; "
                f"say '{named[0][0]}' or give more of the sha",
                [named[0][0], *shas],
            )
        if named:
            return self._resolved(ref, *named[0])
        if len(shas) > 1:
            raise self._ambiguous_sha(ref, shas)
        if shas:
            return self._resolved(ref, shas[0], "sha")
        raise not_found(f"ref '{ref}'", ref, self._names(refs))

    def _ambiguous_sha(self, ref: str, shas: list[str]) -> AmbiguousRef:
        """The error for a sha prefix of several commits, describing the first five."""
        described = ", ".join(f"{c.short} ({c.subject[:40]})" for c in (self._commit(s) for s in shas[:5]))
        return AmbiguousRef(
            f"sha '{ref}' is ambiguous: {len(shas)} commits start with it ({described}); give more digits",
            shas,
        )

    @staticmethod
    def _names(refs: dict[str, str]) -> list[str]:
        return [short_name(r) for r in refs]

    def _commits_with_prefix(self, prefix: str) -> list[str]:
        """Distinct commits whose sha (or whose annotated tag object's sha) starts with prefix."""
        status, out, _ = self._run("rev-parse", f"--disambiguate={prefix.lower()}")
        if status != 0:
            return []
        commits: list[str] = []
        for candidate in out.split():
            peeled = self._peel(candidate)
            if peeled is not None and peeled not in commits:
                commits.append(peeled)
        return commits

    def _resolved(self, ref: str, rev: str, kind: RefKind) -> ResolvedRef:
        sha = self._peel(rev)
        if sha is None:
            raise GitError(f"{kind} '{short_name(ref)}' does not point at a commit")
        c = self._commit(sha)
        return ResolvedRef(
            ref=ref, sha=c.sha, kind=kind, committed_at=c.committed_at, subject=c.subject, author=c.author
        )
