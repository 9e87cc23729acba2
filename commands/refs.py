"""The ref syntax check: is a git ref (or sha) typed in chat acceptable, and if not, why."""

from __future__ import annotations

import re
import unicodedata

MAX_REF_LENGTH = 255
SHELL_METACHARACTERS = ";|&$<>(){}'\"`"
# Characters git's check-ref-format forbids anywhere (besides control characters and space).
_GIT_FORBIDDEN = "~^:?*[\\"
_HEX_SHA_RE = re.compile(r"[0-9a-fA-F]{4,40}")


def ref_problem(ref: str) -> str | None:
    """Return why `ref` is not an acceptable git ref or sha, or None if it is acceptable.

    Applies git's `check-ref-format` rules (one-level names allowed) plus: no shell
    metacharacters, no whitespace/control/format characters, no leading `-`, 255 chars max.
    """
    if not ref:
        return "is empty"
    if len(ref) > MAX_REF_LENGTH:
        return f"is too long (max {MAX_REF_LENGTH} characters)"
    if _HEX_SHA_RE.fullmatch(ref):
        return None
    for char in ref:
        if char in SHELL_METACHARACTERS:
            return f"contains the shell metacharacter {char!r}"
        category = unicodedata.category(char)
        if char.isspace() or category.startswith("Z"):
            return "contains whitespace"
        if category.startswith("C") or char == "\x7f":
            return f"contains a control character (U+{ord(char):04X})"
        if char in _GIT_FORBIDDEN:
            return f"contains {char!r}, which git does not allow in refs"
        if char in "“”‘’":
            return "contains a quote character"
    if ref.startswith("-"):
        return "starts with '-'"
    if ref.startswith("/"):
        return "starts with '/'"
    if ref.endswith("/"):
        return "ends with '/'"
    if ref.endswith("."):
        return "ends with '.'"
    if ref == "@":
        return "is '@', which git does not allow"
    for bad in ("..", "@{", "//"):
        if bad in ref:
            return f"contains {bad!r}"
    for component in ref.split("/"):
        if component.startswith("."):
            return "has a path component starting with '.'"
        if component.endswith(".lock"):
            return "has a path component ending with '.lock'"
    return None


def is_valid_ref(ref: str) -> bool:
    """True if `ref` passes `ref_problem` (a git-valid, shell-safe ref name or hex sha)."""
    return ref_problem(ref) is None
