"""Parse a line of chat text into a typed command.

`parse(command, text, environments)` is pure (no I/O) and never raises: every input, however
odd, yields either one of the command dataclasses of `commands.model` or a `ParseError` with a
short specific message and the usage line of the command concerned.

Text is taken as Slack sends it: `&`, `<`, `>` stay HTML-escaped (`&amp;`, `&lt;`, `&gt;`),
which is also the form that is safe to echo back into Slack messages.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime

from commands.help import GENERAL_USAGE, USAGE, normalize_topic
from commands.model import (
    Abort,
    Cancel,
    Command,
    Deploy,
    Help,
    History,
    Lock,
    ParseError,
    Rollback,
    Signoff,
    Stats,
    Status,
    Unlock,
)
from commands.refs import ref_problem
from commands.tokens import Fail, Option, Token, check_characters, show, split_options, suggest, tokenize

MAX_TEXT_LENGTH = 4000
MAX_DEPLOY_ID = 2**63 - 1

SUBCOMMANDS: frozenset[str] = frozenset({"lock", "unlock", "history", "abort", "cancel", "stats", "help"})
_DEPLOY_ID_RE = re.compile(r"#?([0-9]{1,19})")
_HH_MM_RE = re.compile(r"([01]?[0-9]|2[0-3]):[0-5][0-9]")
_SMALL_INT_RE = re.compile(r"[0-9]{1,6}")


_REASON = Option("--reason", "words")
_DEPLOY_OPTIONS = (
    _REASON,
    Option("--dry-run", "flag", ("-n",)),
    Option("--force", "flag"),
    Option("--at", "value"),
)


def _resolve_env(name: str, environments: Collection[str]) -> str:
    """Return the configured spelling of environment `name`; raise `Fail` if unknown."""
    known = sorted(e for e in environments if isinstance(e, str))
    if name in known:
        return name
    folded = name.casefold()
    matches = [e for e in known if e.casefold() == folded]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Fail(f"ambiguous environment {show(name)}; use one of: {', '.join(matches)}")
    if not known:
        raise Fail(f"unknown environment {show(name)}; no environments are configured")
    listed = ", ".join(known[:20]) + (", …" if len(known) > 20 else "")
    close = suggest(name, known)
    hint = f" did you mean '{close}'?" if close is not None else ""
    raise Fail(f"unknown environment {show(name)};{hint} known: {listed}")


def _check_ref(ref: str) -> str:
    """Return `ref` if it is acceptable; raise `Fail` naming the problem otherwise."""
    problem = ref_problem(ref)
    if problem is not None:
        raise Fail(f"invalid ref {show(ref)}: {problem}")
    return ref


def _deploy_id(text: str) -> int:
    """Parse `42` or `#42` into a positive deploy id; raise `Fail` otherwise."""
    match = _DEPLOY_ID_RE.fullmatch(text)
    if match is None:
        raise Fail(f"invalid deploy id {show(text)}; expected a number like 42 or #42")
    value = int(match.group(1))
    if not 1 <= value <= MAX_DEPLOY_ID:
        raise Fail(f"invalid deploy id {show(text)}; ids start at 1")
    return value


def _bounded_int(option: str, text: str, low: int, high: int) -> int:
    """Parse an option's integer value within [low, high]; raise `Fail` otherwise."""
    if _SMALL_INT_RE.fullmatch(text):
        value = int(text)
        if low <= value <= high:
            return value
    raise Fail(f"{option} must be a whole number from {low} to {high}, not {show(text)}")


def _check_time(text: str) -> str:
    """Validate an `--at` value: `HH:MM` or an ISO date-time with a time part."""
    if _HH_MM_RE.fullmatch(text):
        return text
    if text.isascii() and len(text) <= 40 and ("t" in text.lower() or " " in text):
        try:
            datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return text
    raise Fail(f"invalid time {show(text)} for --at; use HH:MM or e.g. 2026-11-23T22:00")


def _no_extra(positional: Sequence[Token], allowed: int, hint: str = "") -> None:
    """Raise `Fail` if there are more than `allowed` positional words."""
    if len(positional) > allowed:
        raise Fail(f"unexpected argument {show(positional[allowed].text)}{hint}")


def _env_arg(positional: Sequence[Token], environments: Collection[str]) -> str:
    """Return the resolved environment from the first positional word; raise if missing."""
    if not positional:
        raise Fail("missing environment")
    return _resolve_env(positional[0].text, environments)


def _wants_help(tokens: Sequence[Token]) -> bool:
    """True if the words contain an unquoted `--help` or `-h`."""
    return any(not t.quoted and t.text.lower() in ("--help", "-h") for t in tokens)


def _help(tokens: Sequence[Token]) -> Help:
    """`help [topic]`: the topic, normalised, or None for the overview."""
    split_options(tokens, ())
    _no_extra(tokens, 1)
    if not tokens:
        return Help(None)
    return Help(normalize_topic(tokens[0].text) or None)


def _parse_deploy(tokens: list[Token], environments: Collection[str]) -> Command:
    """Parse the text of `/deploy`: a subcommand line, a deploy line, or empty (help)."""
    if not tokens:
        return Help(None)
    first = tokens[0]
    sub = first.text.lower() if not first.quoted else ""
    if sub in SUBCOMMANDS:
        rest = tokens[1:]
        if sub == "help":
            return _help(rest)
        if _wants_help(rest):
            return Help(sub)
        return _parse_sub(sub, rest, environments)
    if _wants_help(tokens):
        return Help("deploy")
    return _parse_plain_deploy(tokens, environments)


def _parse_plain_deploy(tokens: list[Token], environments: Collection[str]) -> Deploy:
    """`/deploy <env> [ref] [--reason TEXT...] [--dry-run|-n] [--force] [--at TIME]`."""
    positional, values = split_options(tokens, _DEPLOY_OPTIONS)
    env = _env_arg(positional, environments)
    _no_extra(positional, 2, " (use --reason for a reason)")
    ref: str | None = None
    if len(positional) > 1:
        ref_text = positional[1].text
        if _DEPLOY_ID_RE.fullmatch(ref_text) and ref_text.startswith("#"):
            raise Fail(f"{show(ref_text)} looks like a deploy id; use /rollback <env> to {ref_text}")
        ref = _check_ref(ref_text)
    at = values.get("--at")
    reason = values.get("--reason")
    return Deploy(
        env=env,
        ref=ref,
        reason=reason if isinstance(reason, str) else None,
        dry_run=values.get("--dry-run") is True,
        force=values.get("--force") is True,
        at=_check_time(at) if isinstance(at, str) else None,
    )


def _parse_sub(sub: str, tokens: list[Token], environments: Collection[str]) -> Command:
    """Parse a `/deploy <subcommand> ...` line (other than `help`)."""
    if sub in ("lock", "unlock"):
        positional, values = split_options(tokens, (_REASON,))
        env = _env_arg(positional, environments)
        words = " ".join(" ".join(t.text for t in positional[1:]).split())
        flagged = values.get("--reason")
        if words and isinstance(flagged, str):
            raise Fail("give the reason either as words or with --reason, not both")
        reason = flagged if isinstance(flagged, str) else (words or None)
        return Lock(env, reason) if sub == "lock" else Unlock(env, reason)
    if sub == "history":
        positional, values = split_options(tokens, (Option("--limit", "value"),))
        env = _env_arg(positional, environments)
        _no_extra(positional, 1)
        limit = values.get("--limit")
        return History(env, _bounded_int("--limit", limit, 1, 100) if isinstance(limit, str) else 10)
    if sub == "stats":
        positional, values = split_options(tokens, (Option("--days", "value"),))
        env = _env_arg(positional, environments)
        _no_extra(positional, 1)
        days = values.get("--days")
        return Stats(env, _bounded_int("--days", days, 1, 365) if isinstance(days, str) else 30)
    if sub == "abort":
        positional, _ = split_options(tokens, ())
        env = _env_arg(positional, environments)
        _no_extra(positional, 1)
        return Abort(env)
    # cancel
    positional, _ = split_options(tokens, ())
    if not positional:
        raise Fail("missing deploy id")
    _no_extra(positional, 1)
    return Cancel(_deploy_id(positional[0].text))


def _parse_rollback(tokens: list[Token], environments: Collection[str]) -> Command:
    """`/rollback <env> [to <#id|ref>] [--reason TEXT...]` (the `to` may be left out)."""
    if tokens and not tokens[0].quoted and tokens[0].text.lower() == "help":
        _no_extra(tokens, 1)
        return Help("rollback")
    if _wants_help(tokens):
        return Help("rollback")
    positional, values = split_options(tokens, (_REASON,))
    env = _env_arg(positional, environments)
    rest = positional[1:]
    if rest and not rest[0].quoted and rest[0].text.lower() == "to":
        rest = rest[1:]
        if not rest:
            raise Fail("missing target after 'to'; give a deploy id like #42 or a ref")
    _no_extra(rest, 1, " (use --reason for a reason)")
    target_id: int | None = None
    target_ref: str | None = None
    if rest:
        target = rest[0].text
        if target.startswith("#") or _DEPLOY_ID_RE.fullmatch(target):
            target_id = _deploy_id(target)
        else:
            target_ref = _check_ref(target)
    reason = values.get("--reason")
    return Rollback(env, target_id, target_ref, reason if isinstance(reason, str) else None)


def _parse_simple(name: str, tokens: list[Token], environments: Collection[str]) -> Command:
    """`/status [env]` and `/signoff <env>` (both also take `help`)."""
    if tokens and not tokens[0].quoted and tokens[0].text.lower() == "help":
        _no_extra(tokens, 1)
        return Help(name)
    if _wants_help(tokens):
        return Help(name)
    positional, _ = split_options(tokens, ())
    _no_extra(positional, 1)
    if name == "status":
        return Status(_resolve_env(positional[0].text, environments) if positional else None)
    return Signoff(_env_arg(positional, environments))


def _parse(command: str, text: str, environments: Collection[str]) -> Command | ParseError:
    """The body of `parse`; may raise only on internal bugs (which `parse` contains)."""
    name = command.strip().lower()
    if name.startswith("/"):
        name = name[1:]
    if name not in ("deploy", "rollback", "status", "signoff"):
        return ParseError(f"unknown command {show('/' + command.strip().lstrip('/'))}", GENERAL_USAGE)
    usage_topic = name
    if len(text) > MAX_TEXT_LENGTH:
        return ParseError(f"command too long (max {MAX_TEXT_LENGTH} characters)", USAGE[usage_topic])
    bad = check_characters(text)
    if bad is not None:
        return ParseError(bad, USAGE[usage_topic])
    tokens = tokenize(text)
    if name == "deploy" and tokens and not tokens[0].quoted and tokens[0].text.lower() in SUBCOMMANDS:
        usage_topic = tokens[0].text.lower()
    try:
        if name == "deploy":
            return _parse_deploy(tokens, environments)
        if name == "rollback":
            return _parse_rollback(tokens, environments)
        return _parse_simple(name, tokens, environments)
    except Fail as failure:
        return ParseError(failure.message, USAGE.get(usage_topic, GENERAL_USAGE))


def parse(command: str, text: str, environments: Collection[str]) -> Command | ParseError:
    """Parse a slash command and its text into a typed command, or a `ParseError`.

    `command` is the slash command as Slack sends it (`/deploy`, `/rollback`, `/status`,
    `/signoff`; the slash is optional, case is ignored); `text` is the rest of the line;
    `environments` are the configured environment names. Never raises, performs no I/O.
    """
    try:
        return _parse(command, text, environments)
    except Exception:  # a bug must not take the bot down; report it as a parse error
        return ParseError("could not parse this command", GENERAL_USAGE)
