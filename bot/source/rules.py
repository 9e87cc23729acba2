"""Pure ref rules: what a ref may look like, which refs an environment allows, deploy tag names.

Pure Python, never runs git::

    validate_ref(ref: str) -> None                                  # raises InvalidRef
    ref_allowed(ref: str, kind: str, patterns: Sequence[str], *, env: str | None = None) -> str | None
    branch_rules(patterns: Sequence[str]) -> list[str]              # the `branch:` globs
    next_tag_name(pattern: str, env: str, number: int) -> str       # "deploy/{env}/{n}"
    tag_glob(pattern: str, env: str) -> str                         # "deploy/prod/*"
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Literal

from bot.source.errors import InvalidRef

MAX_REF_LENGTH = 255

RefKind = Literal["branch", "tag", "sha"]

HEX_RE = re.compile(r"[0-9a-fA-F]{4,40}")
# Characters git itself refuses in ref names (check-ref-format rule 4, 5, 10) plus shell
# metacharacters and quoting characters we never want to see in a ref.
_GIT_FORBIDDEN = set(" ~^:?*[\\")
_SHELL_META = set(";&|$`'\"<>(){}!#*?[]\\~")
HEADS = "refs/heads/"
TAGS = "refs/tags/"


def validate_ref(ref: str) -> None:
    """Raise :class:`InvalidRef` unless ``ref`` is a safe branch/tag name or sha.

    Refuses whatever ``git check-ref-format --allow-onelevel`` refuses, plus whitespace,
    control/non-printable characters, shell metacharacters and a leading ``-``.
    Hex shas (4..40 digits) are accepted. Pure Python, never runs git.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidRef("empty ref")
    shown = ref if ref.isprintable() and len(ref) <= 80 else repr(ref[:80])
    if len(ref) > MAX_REF_LENGTH:
        raise InvalidRef(f"ref {shown} is too long (max {MAX_REF_LENGTH} characters)")
    if HEX_RE.fullmatch(ref):
        return

    def bad(why: str) -> InvalidRef:
        return InvalidRef(f"invalid ref '{shown}': {why}")

    if ref.startswith("-"):
        raise bad("must not start with '-'")
    for ch in ref:
        if not ch.isprintable() or ch.isspace():
            raise bad("contains whitespace or control characters")
        if ch in _SHELL_META or ch in _GIT_FORBIDDEN:
            raise bad(f"contains {ch!r}")
    if ref == "@":
        raise bad("'@' is not a valid ref")
    if "@{" in ref:
        raise bad("contains '@{'")
    if ".." in ref:
        raise bad("contains '..'")
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        raise bad("empty path component")
    if ref.endswith("."):
        raise bad("must not end with '.'")
    for part in ref.split("/"):
        if part.startswith("."):
            raise bad("a component must not start with '.'")
        if part.endswith(".lock"):
            raise bad("a component must not end with '.lock'")


def short_name(ref: str) -> str:
    """``ref`` without its ``refs/heads/`` or ``refs/tags/`` prefix."""
    for prefix in (HEADS, TAGS):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def ref_allowed(ref: str, kind: str, patterns: Sequence[str], *, env: str | None = None) -> str | None:
    """Return None if ``ref`` of ``kind`` matches one of ``patterns``, else a short reason.

    Patterns are case-sensitive globs (:func:`fnmatch.fnmatchcase`; ``*`` also matches ``/``),
    optionally prefixed ``branch:``, ``tag:`` or ``sha:`` to apply to that kind only:
    ``["branch:main", "tag:v*"]`` allows the branch main and tags starting with v. An
    unprefixed pattern applies to **every** kind (``v*`` also allows a branch named
    ``v-experimental``), which the refusal message points out. Empty ``patterns`` allows
    everything. ``refs/heads/``/``refs/tags/`` prefixes of ``ref`` are ignored when matching.
    """
    if not patterns:
        return None
    name = short_name(ref)
    for pattern in patterns:
        pat_kind, sep, glob = pattern.partition(":")
        if not sep or pat_kind not in ("branch", "tag", "sha"):
            pat_kind, glob = "", pattern
        if pat_kind and pat_kind != kind:
            continue
        if fnmatch.fnmatchcase(name, glob):
            return None
    where = f" in {env}" if env else ""
    label = {"branch": "branch", "tag": "tag", "sha": "commit"}.get(kind, "ref")
    hint = ""
    if any(_pattern_kind(p) == "" for p in patterns):
        hint = "; a pattern without branch:, tag: or sha: matches every kind of ref"
    return f"{label} '{name}' is not allowed{where} (allowed: {', '.join(patterns)}{hint})"


def _pattern_kind(pattern: str) -> str:
    """`branch`, `tag` or `sha` for a prefixed allowed-ref pattern, `` for an unprefixed one."""
    pat_kind, sep, _ = pattern.partition(":")
    return pat_kind if sep and pat_kind in ("branch", "tag", "sha") else ""


def branch_rules(patterns: Sequence[str]) -> list[str]:
    """The branch globs of allowed-ref ``patterns`` (those prefixed ``branch:``), in order.

    ``branch_rules(["branch:main", "branch:release/*", "tag:v*"]) == ["main", "release/*"]``.
    """
    return [p.partition(":")[2] for p in patterns if _pattern_kind(p) == "branch"]


def next_tag_name(pattern: str, env: str, number: int) -> str:
    """Render a deploy tag name from ``pattern``: ``{env}`` and ``{n}`` are substituted.

    ``next_tag_name("deploy/{env}/{n}", "prod", 42) == "deploy/prod/42"``. The result must be
    a valid ref (:func:`validate_ref`), else :class:`InvalidRef`.
    """
    if number < 0:
        raise InvalidRef(f"tag number must not be negative (got {number})")
    name = pattern.replace("{env}", env).replace("{n}", str(number))
    try:
        validate_ref(name)
    except InvalidRef as exc:
        raise InvalidRef(f"tag pattern {pattern!r} gives an invalid tag name: {exc}") from None
    return name


def tag_glob(pattern: str, env: str) -> str:
    """The glob of short tag names ``pattern`` gives for ``env``, for :class:`Mirror` ``keep_tags``.

    ``{env}`` is substituted and ``{n}`` becomes ``*``; a git refspec allows one ``*``, so with
    several the glob stops at the first: ``tag_glob("deploy/{env}/{n}", "prod") == "deploy/prod/*"``.
    Raises :class:`InvalidRef` when the result cannot name tags.
    """
    glob = pattern.replace("{env}", env).replace("{n}", "*")
    if glob.count("*") > 1:
        glob = glob[: glob.index("*") + 1]
    check_tag_glob(glob)
    return glob


def check_tag_glob(glob: str) -> None:
    """Raise :class:`InvalidRef` unless ``glob`` can be a ``keep_tags`` glob (a tag name, one ``*`` at most)."""
    if glob.count("*") > 1 or glob in ("", "*"):
        raise InvalidRef(f"tag glob {glob!r} must be a tag name with at most one '*' and more than '*'")
    try:
        validate_ref(glob.replace("*", "x"))
    except InvalidRef as exc:
        raise InvalidRef(f"tag glob {glob!r} cannot name tags: {exc}") from None
