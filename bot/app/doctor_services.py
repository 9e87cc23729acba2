"""`gonogo doctor`'s checks of what the bot itself talks to: the store, Slack and the git remote.

Each check reads, never writes: the store is opened read-only (pending migrations are applied
by the bot at its next start, not here), Slack answers `auth.test` (and, for Socket Mode,
`apps.connections.open`), the remote answers `git ls-remote`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from bot.config import Config

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it went, and what to do about it."""

    check: str
    status: Status
    what: str
    fix: str | None = None

    MARKS: ClassVar[dict[str, str]] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}

    def line(self) -> str:
        """`✗ store: cannot connect … — fix: …`."""
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.MARKS[self.status]} {self.check}: {self.what}{fix}"


def check_store(url: str) -> Finding:
    """The store connects and its migrations are applied."""
    if url.startswith("sqlite:///"):
        return _sqlite(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url)
    return Finding(
        "store", "fail", f"unsupported store URL {url[:40]!r}", "use sqlite:///path or postgresql://…"
    )


def _sqlite(path: Path) -> Finding:
    import sqlite_utils

    from bot.store.sqlite_migrations import migrations

    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return Finding(
                "store", "ok", f"SQLite {path} is created at the first start ({parent} is writable)"
            )
        return Finding("store", "fail", f"SQLite {path} cannot be created: {parent} is not writable",
                       "set [bot] data_dir (or GONOGO_DATA_DIR) to a writable directory")  # fmt: skip
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            pending = migrations.pending(sqlite_utils.Database(conn))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Finding(
            "store",
            "fail",
            f"SQLite {path} cannot be read: {exc}",
            "is it a gonogo database? check [bot] store",
        )
    return _migrated(f"SQLite {path}", [m.name for m in pending])


def _postgres(url: str) -> Finding:
    import psycopg

    from bot.store.postgres import conninfo, describe, split_url
    from bot.store.postgres_connection import first_line
    from bot.store.postgres_migrations import MIGRATIONS

    libpq_url, schema = split_url(url)
    where = describe(url)
    fix = (
        "check [bot] store or GONOGO_STORE_URL (host, port, database, user; the password in "
        f"PGPASSWORD or ~/.pgpass), and that the server is up: psql 'postgresql://{where}'"
    )
    try:
        with psycopg.connect(conninfo(libpq_url, schema), autocommit=True) as conn:
            try:
                done = {r[0] for r in conn.execute("SELECT name FROM gonogo_migrations").fetchall()}
            except psycopg.errors.UndefinedTable:
                done = set()
    except psycopg.Error as exc:
        return Finding("store", "fail", f"cannot connect to PostgreSQL at {where}: {first_line(exc)}", fix)
    except Exception as exc:  # a URL libpq cannot parse
        return Finding("store", "fail", f"PostgreSQL at {where}: {exc}", fix)
    return _migrated(f"PostgreSQL {where}", [name for name, _ in MIGRATIONS if name not in done])


def _migrated(what: str, pending: list[str]) -> Finding:
    if not pending:
        return Finding("store", "ok", f"{what} connects and is migrated")
    return Finding(
        "store",
        "warn",
        f"{what} connects; {len(pending)} migration(s) pending ({', '.join(pending[:3])})",
        "the bot applies them when it starts (its database user needs the right to create tables)",
    )


def check_slack(config: Config, environ: Mapping[str, str]) -> list[Finding]:
    """Tokens present and accepted by the configured Web API."""
    token = environ.get("SLACK_BOT_TOKEN", "")
    if not token:
        return [Finding("slack", "skip", "SLACK_BOT_TOKEN is not set: `gonogo run` opens the terminal chat",
                        "to serve Slack, set SLACK_BOT_TOKEN (xoxb-…) and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN (docs/SLACK.md)")]  # fmt: skip
    from bot.slack import make_client

    api = config.slack.api_url
    findings = [_call("slack", make_client(token, api, max_retries=1), "auth.test", api, token_kind="bot")]
    app_token = environ.get("SLACK_APP_TOKEN", "")
    if app_token:
        if not app_token.startswith("xapp-"):
            findings.append(Finding("slack", "fail", "SLACK_APP_TOKEN does not start with xapp-",
                                    "use the app-level token (Basic Information → App-Level Tokens, scope connections:write)"))  # fmt: skip
        else:
            client = make_client(app_token, api, max_retries=1)
            findings.append(_call("slack", client, "apps.connections.open", api, token_kind="app"))
    elif not environ.get("SLACK_SIGNING_SECRET"):
        findings.append(Finding("slack", "fail", "neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode) is set",
                                "set one: the signing secret of your app's Basic Information page, or an xapp- token"))  # fmt: skip
    return findings


def _call(check: str, client: object, method: str, api: str, *, token_kind: str) -> Finding:
    from slack_sdk.errors import SlackApiError

    try:
        resp = client.api_call(method)  # type: ignore[attr-defined]
    except SlackApiError as exc:
        error = exc.response.get("error") or exc.response.status_code
        which = "SLACK_BOT_TOKEN" if token_kind == "bot" else "SLACK_APP_TOKEN"
        return Finding(check, "fail", f"{method} at {api} refused {which} ({error})",
                       "copy the Bot User OAuth Token (xoxb-…) from your app's OAuth & Permissions page (a revoked "
                       "or rotated token must be replaced)" if token_kind == "bot"
                       else "make a new app-level token with the connections:write scope")  # fmt: skip
    except Exception as exc:
        return Finding(check, "fail", f"cannot reach the Slack Web API at {api}: {type(exc).__name__}: {exc}",
                       "check [slack] api_url / SLACK_API_URL and this machine's access to it")  # fmt: skip
    if method == "auth.test":
        return Finding(check, "ok", f"auth.test at {api}: bot {resp.get('user')} in team {resp.get('team')}")
    return Finding(check, "ok", "Socket Mode: apps.connections.open accepted SLACK_APP_TOKEN")


def check_git(config: Config, env_names: list[str]) -> list[Finding]:
    """The remote answers and the default ref (and each environment's) resolves."""
    import git

    from bot.source.gitdir import NET_ENV, git_message, redact_url

    url = config.repo.url
    if not url:
        return [Finding("git", "warn", "no [repo] url: refs are taken as labels and cards have no changelog",
                        "set [repo] url to the repository you deploy")]  # fmt: skip
    shown = redact_url(url)
    if url.startswith("/") and not Path(url).exists():
        return [Finding("git", "fail", f"the repository {url} does not exist",
                        "check [repo] url (the bundled demo's history is made by ./scripts/run.sh: "
                        "python3 demo/history.py --config <file>)")]  # fmt: skip
    status, out, err = git.Git().execute(
        ["git", "ls-remote", "--heads", "--tags", "--", url],
        with_extended_output=True, with_exceptions=False, kill_after_timeout=config.repo.fetch_timeout,
        env={**os.environ, **NET_ENV},
    )  # fmt: skip
    if status != 0:
        return [Finding("git", "fail", f"cannot read {shown}: {git_message(str(err))}",
                        f"check [repo] url and that this machine may read it (a deploy key, credentials): git ls-remote {shown}")]  # fmt: skip
    refs = {name: sha for sha, _, name in (line.partition("\t") for line in str(out).splitlines())}
    findings = [_ref(shown, config.repo.default_branch, refs, "[repo] default_branch")]
    for name in env_names:
        ref = config.environments[name].default_ref
        if ref:
            findings.append(_ref(shown, ref, refs, f"environments.{name}.default_ref"))
    return findings


def _ref(shown: str, ref: str, refs: Mapping[str, str], key: str) -> Finding:
    for full in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if full in refs:
            return Finding("git", "ok", f"{shown} is reachable; {ref} is {refs[full][:7]}")
    if all(c in "0123456789abcdef" for c in ref.lower()) and len(ref) >= 7:
        return Finding("git", "skip", f"{ref} ({key}) looks like a commit: resolved at the first /deploy")
    branches = sorted(n.removeprefix("refs/heads/") for n in refs if n.startswith("refs/heads/"))
    return Finding("git", "fail", f"{ref} ({key}) is no branch or tag of {shown} (branches: {', '.join(branches[:8]) or 'none'})",
                   f"set {key} to one of its branches")  # fmt: skip


__all__ = ["Finding", "check_git", "check_slack", "check_store"]
