"""Which refs an environment deploys: `allowed_refs` globs and the deploy `tag_pattern`.

The ref rules themselves belong to `bot.source`; this module reads the keys and reports problems.
"""

from __future__ import annotations

from bot.config.reader import Table


def parse_allowed_refs(t: Table) -> tuple[str, ...]:
    """Allowed-ref globs; a prefix must be one of branch:, tag:, sha: (git refs never hold ':')."""
    patterns = t.strings("allowed_refs")
    for i, pattern in enumerate(patterns):
        kind, sep, glob = pattern.partition(":")
        if sep and kind not in ("branch", "tag", "sha"):
            t.problems.add(
                f"{t.key('allowed_refs')}[{i}]", f"unknown prefix {kind + ':'!r} (use branch:, tag: or sha:)"
            )
        elif sep and not glob.strip():
            t.problems.add(f"{t.key('allowed_refs')}[{i}]", f"{kind}: needs a pattern after it")
    return patterns


def parse_tag_pattern(t: Table, env: str) -> str | None:
    """The deploy tag pattern, checked by rendering a tag name and its glob from it."""
    pattern = t.get("tag_pattern", str, None)
    if pattern is not None:
        # imported on use, as before the split (bot.source loads GitPython only when asked)
        from bot.source import InvalidRef, next_tag_name, tag_glob

        try:
            next_tag_name(pattern, env, 1)
            tag_glob(pattern, env)
        except InvalidRef as exc:
            t.problems.add(t.key("tag_pattern"), str(exc))
    return pattern
