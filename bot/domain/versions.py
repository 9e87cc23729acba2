"""Release order by version: is `v2.4.0` from `v2` on? (a check's `since`).

A ref is read as a version when it holds one: an optional prefix (`v`, `release-`), numbers
separated by dots, and an optional pre-release (`-rc1`, `-beta.2`), which sorts before the
release itself. ``v10`` comes after ``v9``; ``v2`` equals ``v2.0``. A ref with no version in
it (`main`, a commit sha) cannot be ordered.
"""

from __future__ import annotations

import re

_VERSION = re.compile(
    r"^(?:[A-Za-z][A-Za-z_]*[-_/])?[vV]?(?P<nums>\d+(?:\.\d+)*)(?:[-.+]?(?P<pre>[A-Za-z][A-Za-z0-9.-]*))?$"
)
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
#: Suffixes that mark a pre-release (anything else after the numbers is build metadata).
_PRE = ("a", "alpha", "b", "beta", "c", "pre", "preview", "rc", "dev")

VersionKey = tuple[tuple[int, ...], int, tuple[int, ...]]


def version_key(ref: str) -> VersionKey | None:
    """A sort key for `ref` as a version, or None when it holds no version."""
    ref = ref.strip()
    m = _VERSION.match(ref)
    if m is None or (_SHA.match(ref) and not ref.isdigit()):
        return None
    nums = tuple(int(n) for n in m.group("nums").split("."))
    while len(nums) > 1 and nums[-1] == 0:
        nums = nums[:-1]
    pre = m.group("pre") or ""
    word = re.match(r"[A-Za-z]+", pre)
    if word and word.group(0).lower() in _PRE:
        return nums, 0, tuple(int(n) for n in re.findall(r"\d+", pre))
    return nums, 1, ()


def is_version(ref: str) -> bool:
    """True when `ref` holds a version (see the module docstring)."""
    return version_key(ref) is not None


def from_on(ref: str, since: str) -> bool | None:
    """True when `ref` is `since` or a later release, False when earlier; None when either holds
    no version (the order cannot be told)."""
    key, floor = version_key(ref), version_key(since)
    if key is None or floor is None:
        return None
    return key >= floor


__all__ = ["from_on", "is_version", "version_key"]
