"""Which refs an environment deploys: `allowed_refs` globs and the deploy `tag_pattern`."""

from __future__ import annotations

from bot.config.reader import Problems, Table


def parse_allowed_refs(t: Table, p: Problems) -> tuple[str, ...]:
    """Allowed-ref globs; a prefix must be one of branch:, tag:, sha: (git refs never hold ':')."""
    patterns = t.strings("allowed_refs")
    for i, pattern in enumerate(patterns):
        kind, sep, glob = pattern.partition(":")
        if sep and kind not in ("branch", "tag", "sha"):
            p.add(
                f"{t.key('allowed_refs')}[{i}]", f"unknown prefix {kind + ':'!r} (use branch:, tag: or sha:)"
            )
        elif sep and not glob.strip():
            p.add(f"{t.key('allowed_refs')}[{i}]", f"{kind}: needs a pattern after it")
    return patterns


def parse_tag_pattern(t: Table, p: Problems, env: str) -> str | None:
    """The deploy tag pattern, checked by rendering a tag name and its glob from it."""
    pattern = t.get("tag_pattern", str, None)
    if pattern is not None:
        from bot.source.mirror import InvalidRef, next_tag_name, tag_glob

        try:
            next_tag_name(pattern, env, 1)
            tag_glob(pattern, env)
        except InvalidRef as exc:
            p.add(t.key("tag_pattern"), str(exc))
    return pattern
