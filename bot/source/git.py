"""The real ref seam: refs resolved against a bare mirror of `[repo] url` (GitPython).

Every deploy names an exact commit. The card gets the changelog since what the environment
runs now, with warnings (too many commits, not on the environment's branch, stale mirror);
refs outside the environment's `allowed_refs` globs are refused with the rule shown; a target
*behind* what is deployed is flagged so the engine can demand `--force` or `/rollback`.

"The environment's branch" is its branch rules: the `branch:` patterns of `allowed_refs`;
without any, its `default_ref` when that is a branch, else `[repo] default_branch`.
Deploy tags (`tag_pattern`) are kept out of the mirror's pruning fetch, so a tag made without
a push remote stays in the mirror.
"""

from __future__ import annotations

import fnmatch
import logging

from bot.config import Config, Environment
from bot.source.base import RefError, Resolution
from bot.source.changelog import changelog_lines, changelog_note, changelog_warnings
from bot.source.errors import GitError
from bot.source.fetching import FetchResult
from bot.source.mirror import Mirror
from bot.source.rules import branch_rules, next_tag_name, ref_allowed, tag_glob

log = logging.getLogger("gonogo.git")
CHANGELOG_LINES = 10


class GitResolver:
    """Resolves refs through a mirror kept under the bot's data directory."""

    def __init__(self, config: Config) -> None:
        assert config.repo.url
        self.config = config
        self.mirror = Mirror(
            config.repo.url,
            config.bot.data_dir / "mirror.git",
            fetch_timeout=config.repo.fetch_timeout,
            keep_tags=deploy_tag_globs(config),
        )

    def branches_for(self, environment: Environment) -> list[str]:
        """The environment's branch rules (globs): see the module docstring."""
        rules = branch_rules(environment.allowed_refs)
        if rules:
            return rules
        default = environment.default_ref
        if default and default.removeprefix("refs/heads/") in self.mirror.branches():
            return [default.removeprefix("refs/heads/")]
        return [self.config.repo.default_branch]

    def resolve(self, env: str, ref: str | None, current_sha: str | None, *, force: bool) -> Resolution:
        """Fetch, resolve, check the allowed-ref rules, and describe the change."""
        environment = self.config.environments[env]
        branch = self.config.repo.default_branch
        try:
            fetched = self.mirror.fetch()
            resolved = self.mirror.resolve(ref, branch)
        except GitError as exc:
            raise RefError(str(exc)) from None
        refusal = ref_allowed(resolved.ref, resolved.kind, environment.allowed_refs, env=env)
        if refusal:
            raise RefError(refusal)
        try:
            changelog = self.mirror.changelog(current_sha, resolved.sha, limit=CHANGELOG_LINES)
            rules = self.branches_for(environment)
            containing = self.mirror.branches_containing(resolved.sha)
        except GitError as exc:
            raise RefError(str(exc)) from None
        on_branch = any(fnmatch.fnmatchcase(b, rule) for b in containing for rule in rules)
        warnings = changelog_warnings(
            changelog, max_commits=environment.max_commits, branch_ok=on_branch, branches=rules
        )
        if not fetched.ok:
            warnings.insert(0, _stale_mirror_warning(fetched))
        return Resolution(
            ref=resolved.ref,
            sha=resolved.sha,
            committed_at=resolved.committed_at,
            changelog=changelog_lines(changelog),
            changelog_note=changelog_note(changelog, env, resolved.short),
            warnings=tuple(warnings),
            behind=changelog.behind,
        )

    def after_success(self, env: str, deploy_id: int, sha: str | None) -> str | None:
        """Create (and push) the environment's deploy tag, if it asks for one."""
        pattern = self.config.environments[env].tag_pattern
        if not pattern or not sha:
            return None
        name = next_tag_name(pattern, env, deploy_id)
        try:
            self.mirror.create_tag(name, sha, f"gonogo deploy #{deploy_id} to {env}")
            if self.config.repo.push_remote:
                self.mirror.push_tag(name, self.config.repo.push_remote)
                return f"Tagged {sha[:7]} as {name} and pushed it"
        except GitError as exc:
            log.warning("deploy #%s: tagging %s failed: %s", deploy_id, name, exc)
            return f"Could not tag {sha[:7]} as {name}: {exc}"
        return f"Tagged {sha[:7]} as {name} in the mirror (no push remote configured)"


def _stale_mirror_warning(fetched: FetchResult) -> str:
    """The card's warning when the fetch failed and the mirror's older data is used."""
    when = fetched.fetched_at.strftime("%Y-%m-%d %H:%M UTC") if fetched.fetched_at else "never"
    return f"could not fetch the repository ({fetched.error}); using the mirror from {when}"


def deploy_tag_globs(config: Config) -> tuple[str, ...]:
    """The tags gonogo makes (every environment's `tag_pattern`), as globs the fetch keeps."""
    globs = []
    for name, env in config.environments.items():
        if env.tag_pattern:
            try:
                globs.append(tag_glob(env.tag_pattern, name))
            except GitError as exc:
                log.warning("%s: tag_pattern %r: %s", name, env.tag_pattern, exc)
    return tuple(dict.fromkeys(globs))
