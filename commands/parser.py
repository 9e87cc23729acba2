"""Parse a line of chat text into a typed command.

`parse(command, text, environments)` is pure (no I/O) and never raises: every input, however
odd, yields either one of the command dataclasses of `commands.model` or a `ParseError` with a
short specific message and the usage line of the command concerned.

Text is taken as Slack sends it: `&`, `<`, `>` stay HTML-escaped (`&amp;`, `&lt;`, `&gt;`),
which is also the form that is safe to echo back into Slack messages.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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

MAX_TEXT_LENGTH = 4000
MAX_REF_LENGTH = 255
MAX_DEPLOY_ID = 2**63 - 1

SUBCOMMANDS: frozenset[str] = frozenset({"lock", "unlock", "history", "abort", "cancel", "stats", "help"})
SHELL_METACHARACTERS = ";|&$<>(){}'\"`"
# Characters git's check-ref-format forbids anywhere (besides control characters and space).
_GIT_FORBIDDEN = "~^:?*[\\"
_QUOTE_CLOSERS: dict[str, str] = {
    '"': '"',
    "'": "'",
    "“": "”“",  # Slack's smart quotes
    "”": "”",
    "‘": "’‘",
    "’": "’",
}
_ALLOWED_CONTROLS = "\t\n\r"
_HEX_SHA_RE = re.compile(r"[0-9a-fA-F]{4,40}")
_DEPLOY_ID_RE = re.compile(r"#?([0-9]{1,19})")
_NEGATIVE_NUMBER_RE = re.compile(r"-[0-9]+")
_HH_MM_RE = re.compile(r"([01]?[0-9]|2[0-3]):[0-5][0-9]")
_SMALL_INT_RE = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class _Token:
    """One word of the command text; `quoted` when it started with a quote (never an option)."""

    text: str
    quoted: bool = False


_Kind = Literal["flag", "value", "words"]


@dataclass(frozen=True)
class _Option:
    """An option a command accepts: `flag` (boolean), `value` (one token) or `words` (a phrase)."""

    name: str
    kind: _Kind
    aliases: tuple[str, ...] = ()


_REASON = _Option("--reason", "words")
_DEPLOY_OPTIONS = (
    _REASON,
    _Option("--dry-run", "flag", ("-n",)),
    _Option("--force", "flag"),
    _Option("--at", "value"),
)


class _Fail(Exception):
    """Internal: aborts parsing of one command with a user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _show(text: str, limit: int = 40) -> str:
    """Quote user text for an error message: truncated, non-printable characters escaped."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:limit])
    if len(text) > limit:
        shown += "…"
    return f"'{shown}'"


def _suggest(word: str, candidates: Sequence[str]) -> str | None:
    """Return the closest candidate to `word` (case-insensitively), or None."""
    if not candidates or len(word) > 100:
        return None
    folded = {c.casefold(): c for c in candidates}
    match = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


def _check_characters(text: str) -> str | None:
    """Return an error message if `text` contains control characters other than tab/newline."""
    for char in text:
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            name = "NUL" if char == "\0" else f"U+{ord(char):04X}"
            return f"command contains a control character ({name})"
    return None


_CLOSER_AT_WORD_END: dict[str, re.Pattern[str]] = {
    closers: re.compile(f"[{re.escape(closers)}](?=\\s|$)") for closers in set(_QUOTE_CLOSERS.values())
}


def _closing_quote(text: str, start: int, closers: str) -> int:
    """Index of the quote closing the one at `start`, or -1 if there is none.

    A closer followed by whitespace or the end wins, so apostrophes inside quoted text
    (`'it's fine'`, `‘it’s fine’`) do not end the quote early; otherwise the first closer.
    """
    match = _CLOSER_AT_WORD_END[closers].search(text, start + 1)
    if match is not None:
        return match.start()
    return min((p for p in (text.find(c, start + 1) for c in closers) if p >= 0), default=-1)


def _tokenize(text: str) -> list[_Token]:
    """Split text into words; whitespace separates, quotes group (an unmatched quote is literal).

    A quote opens a quoted run at the start of a word or right after `=` (`--reason="a b"`).
    Quoted runs keep their whitespace; `quoted` tokens are never options or subcommands.
    """
    tokens: list[_Token] = []
    buf: list[str] = []
    in_word = False
    quoted = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            if in_word:
                tokens.append(_Token("".join(buf), quoted))
                buf, in_word, quoted = [], False, False
            i += 1
            continue
        closers = _QUOTE_CLOSERS.get(char)
        if closers is not None and (not in_word or (buf and buf[-1] == "=")):
            end = _closing_quote(text, i, closers)
            if end >= 0:
                if not in_word:
                    quoted = True
                in_word = True
                buf.append(text[i + 1 : end])
                i = end + 1
                continue
        in_word = True
        buf.append(char)
        i += 1
    if in_word:
        tokens.append(_Token("".join(buf), quoted))
    return tokens


def _is_option(token: _Token) -> bool:
    """True for an unquoted word that looks like an option (`--x`, `-x`), not `-` or `-5`."""
    text = token.text
    return (
        not token.quoted
        and len(text) > 1
        and text.startswith("-")
        and not _NEGATIVE_NUMBER_RE.fullmatch(text)
    )


def _ends_words(token: _Token, short_names: Collection[str]) -> bool:
    """True if `token` ends a `--reason` phrase: a `--option` or a known short option."""
    if token.quoted:
        return False
    text = token.text
    return (text.startswith("--") and len(text) > 2) or text.lower() in short_names


def _split(
    tokens: Sequence[_Token], options: Sequence[_Option]
) -> tuple[list[_Token], dict[str, str | bool]]:
    """Separate positional words from options; raise `_Fail` on unknown/misused options."""
    by_name: dict[str, _Option] = {}
    for spec in options:
        by_name[spec.name] = spec
        for alias in spec.aliases:
            by_name[alias] = spec
    short_names = [name for name in by_name if not name.startswith("--")]
    positional: list[_Token] = []
    values: dict[str, str | bool] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not _is_option(token):
            positional.append(token)
            continue
        raw = token.text
        inline: str | None = None
        if raw.startswith("--") and "=" in raw:
            raw, inline = raw.split("=", 1)
        name = raw.lower()
        option = by_name.get(name)
        if option is None:
            if not by_name:
                raise _Fail(f"unknown option {_show(raw)}; this command takes no options")
            close = _suggest(name, list(by_name))
            if close is not None:
                raise _Fail(f"unknown option {_show(raw)}; did you mean '{close}'?")
            raise _Fail(f"unknown option {_show(raw)}; options: {', '.join(o.name for o in options)}")
        if option.kind != "flag" and option.name in values:
            raise _Fail(f"option '{option.name}' given more than once")
        if option.kind == "flag":
            if inline is not None:
                raise _Fail(f"option '{option.name}' takes no value")
            values[option.name] = True
        elif option.kind == "value":
            if inline is None and i < len(tokens) and not _ends_words(tokens[i], short_names):
                inline = tokens[i].text
                i += 1
            if not inline:
                raise _Fail(f"option '{option.name}' needs a value")
            values[option.name] = inline
        else:
            words = [inline] if inline is not None else []
            while i < len(tokens) and not _ends_words(tokens[i], short_names):
                words.append(tokens[i].text)
                i += 1
            phrase = " ".join(" ".join(words).split())
            if not phrase:
                raise _Fail(f"option '{option.name}' needs a value")
            values[option.name] = phrase
    return positional, values


def _resolve_env(name: str, environments: Collection[str]) -> str:
    """Return the configured spelling of environment `name`; raise `_Fail` if unknown."""
    known = sorted(e for e in environments if isinstance(e, str))
    if name in known:
        return name
    folded = name.casefold()
    matches = [e for e in known if e.casefold() == folded]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise _Fail(f"ambiguous environment {_show(name)}; use one of: {', '.join(matches)}")
    if not known:
        raise _Fail(f"unknown environment {_show(name)}; no environments are configured")
    listed = ", ".join(known[:20]) + (", …" if len(known) > 20 else "")
    close = _suggest(name, known)
    hint = f" did you mean '{close}'?" if close is not None else ""
    raise _Fail(f"unknown environment {_show(name)};{hint} known: {listed}")


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


def _check_ref(ref: str) -> str:
    """Return `ref` if it is acceptable; raise `_Fail` naming the problem otherwise."""
    problem = ref_problem(ref)
    if problem is not None:
        raise _Fail(f"invalid ref {_show(ref)}: {problem}")
    return ref


def _deploy_id(text: str) -> int:
    """Parse `42` or `#42` into a positive deploy id; raise `_Fail` otherwise."""
    match = _DEPLOY_ID_RE.fullmatch(text)
    if match is None:
        raise _Fail(f"invalid deploy id {_show(text)}; expected a number like 42 or #42")
    value = int(match.group(1))
    if not 1 <= value <= MAX_DEPLOY_ID:
        raise _Fail(f"invalid deploy id {_show(text)}; ids start at 1")
    return value


def _bounded_int(option: str, text: str, low: int, high: int) -> int:
    """Parse an option's integer value within [low, high]; raise `_Fail` otherwise."""
    if _SMALL_INT_RE.fullmatch(text):
        value = int(text)
        if low <= value <= high:
            return value
    raise _Fail(f"{option} must be a whole number from {low} to {high}, not {_show(text)}")


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
    raise _Fail(f"invalid time {_show(text)} for --at; use HH:MM or e.g. 2026-11-23T22:00")


def _no_extra(positional: Sequence[_Token], allowed: int, hint: str = "") -> None:
    """Raise `_Fail` if there are more than `allowed` positional words."""
    if len(positional) > allowed:
        raise _Fail(f"unexpected argument {_show(positional[allowed].text)}{hint}")


def _env_arg(positional: Sequence[_Token], environments: Collection[str]) -> str:
    """Return the resolved environment from the first positional word; raise if missing."""
    if not positional:
        raise _Fail("missing environment")
    return _resolve_env(positional[0].text, environments)


def _wants_help(tokens: Sequence[_Token]) -> bool:
    """True if the words contain an unquoted `--help` or `-h`."""
    return any(not t.quoted and t.text.lower() in ("--help", "-h") for t in tokens)


def _help(tokens: Sequence[_Token]) -> Help:
    """`help [topic]`: the topic, normalised, or None for the overview."""
    _split(tokens, ())
    _no_extra(tokens, 1)
    if not tokens:
        return Help(None)
    return Help(normalize_topic(tokens[0].text) or None)


def _parse_deploy(tokens: list[_Token], environments: Collection[str]) -> Command:
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


def _parse_plain_deploy(tokens: list[_Token], environments: Collection[str]) -> Deploy:
    """`/deploy <env> [ref] [--reason TEXT...] [--dry-run|-n] [--force] [--at TIME]`."""
    positional, values = _split(tokens, _DEPLOY_OPTIONS)
    env = _env_arg(positional, environments)
    _no_extra(positional, 2, " (use --reason for a reason)")
    ref: str | None = None
    if len(positional) > 1:
        ref_text = positional[1].text
        if _DEPLOY_ID_RE.fullmatch(ref_text) and ref_text.startswith("#"):
            raise _Fail(f"{_show(ref_text)} looks like a deploy id; use /rollback <env> to {ref_text}")
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


def _parse_sub(sub: str, tokens: list[_Token], environments: Collection[str]) -> Command:
    """Parse a `/deploy <subcommand> ...` line (other than `help`)."""
    if sub in ("lock", "unlock"):
        positional, values = _split(tokens, (_REASON,))
        env = _env_arg(positional, environments)
        words = " ".join(" ".join(t.text for t in positional[1:]).split())
        flagged = values.get("--reason")
        if words and isinstance(flagged, str):
            raise _Fail("give the reason either as words or with --reason, not both")
        reason = flagged if isinstance(flagged, str) else (words or None)
        return Lock(env, reason) if sub == "lock" else Unlock(env, reason)
    if sub == "history":
        positional, values = _split(tokens, (_Option("--limit", "value"),))
        env = _env_arg(positional, environments)
        _no_extra(positional, 1)
        limit = values.get("--limit")
        return History(env, _bounded_int("--limit", limit, 1, 100) if isinstance(limit, str) else 10)
    if sub == "stats":
        positional, values = _split(tokens, (_Option("--days", "value"),))
        env = _env_arg(positional, environments)
        _no_extra(positional, 1)
        days = values.get("--days")
        return Stats(env, _bounded_int("--days", days, 1, 365) if isinstance(days, str) else 30)
    if sub == "abort":
        positional, _ = _split(tokens, ())
        env = _env_arg(positional, environments)
        _no_extra(positional, 1)
        return Abort(env)
    # cancel
    positional, _ = _split(tokens, ())
    if not positional:
        raise _Fail("missing deploy id")
    _no_extra(positional, 1)
    return Cancel(_deploy_id(positional[0].text))


def _parse_rollback(tokens: list[_Token], environments: Collection[str]) -> Command:
    """`/rollback <env> [to <#id|ref>] [--reason TEXT...]` (the `to` may be left out)."""
    if tokens and not tokens[0].quoted and tokens[0].text.lower() == "help":
        _no_extra(tokens, 1)
        return Help("rollback")
    if _wants_help(tokens):
        return Help("rollback")
    positional, values = _split(tokens, (_REASON,))
    env = _env_arg(positional, environments)
    rest = positional[1:]
    if rest and not rest[0].quoted and rest[0].text.lower() == "to":
        rest = rest[1:]
        if not rest:
            raise _Fail("missing target after 'to'; give a deploy id like #42 or a ref")
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


def _parse_simple(name: str, tokens: list[_Token], environments: Collection[str]) -> Command:
    """`/status [env]` and `/signoff <env>` (both also take `help`)."""
    if tokens and not tokens[0].quoted and tokens[0].text.lower() == "help":
        _no_extra(tokens, 1)
        return Help(name)
    if _wants_help(tokens):
        return Help(name)
    positional, _ = _split(tokens, ())
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
        return ParseError(f"unknown command {_show('/' + command.strip().lstrip('/'))}", GENERAL_USAGE)
    usage_topic = name
    if len(text) > MAX_TEXT_LENGTH:
        return ParseError(f"command too long (max {MAX_TEXT_LENGTH} characters)", USAGE[usage_topic])
    bad = _check_characters(text)
    if bad is not None:
        return ParseError(bad, USAGE[usage_topic])
    tokens = _tokenize(text)
    if name == "deploy" and tokens and not tokens[0].quoted and tokens[0].text.lower() in SUBCOMMANDS:
        usage_topic = tokens[0].text.lower()
    try:
        if name == "deploy":
            return _parse_deploy(tokens, environments)
        if name == "rollback":
            return _parse_rollback(tokens, environments)
        return _parse_simple(name, tokens, environments)
    except _Fail as failure:
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
