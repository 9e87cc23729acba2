"""The words of a command line: the tokenizer, option splitting, and the failure they raise.

Quotes (straight and Slack's smart ones) group words; `split_options` separates positional words from
the options a command accepts. Pure functions; `Fail` carries a user-facing message up to
`commands.parser.parse`, which turns it into a `ParseError`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

_QUOTE_CLOSERS: dict[str, str] = {
    '"': '"',
    "'": "'",
    "“": "”“",  # Slack's smart quotes
    "”": "”",
    "‘": "’‘",
    "’": "’",
}
_ALLOWED_CONTROLS = "\t\n\r"
_NEGATIVE_NUMBER_RE = re.compile(r"-[0-9]+")


@dataclass(frozen=True)
class Token:
    """One word of the command text; `quoted` when it started with a quote (never an option)."""

    text: str
    quoted: bool = False


OptionKind = Literal["flag", "value", "words"]


@dataclass(frozen=True)
class Option:
    """An option a command accepts: `flag` (boolean), `value` (one token) or `words` (a phrase)."""

    name: str
    kind: OptionKind
    aliases: tuple[str, ...] = ()


class Fail(Exception):
    """Aborts parsing of one command with a user-facing message (`parse` returns it as a `ParseError`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def show(text: str, limit: int = 40) -> str:
    """Quote user text for an error message: truncated, non-printable characters escaped."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:limit])
    if len(text) > limit:
        shown += "…"
    return f"'{shown}'"


def suggest(word: str, candidates: Sequence[str]) -> str | None:
    """Return the closest candidate to `word` (case-insensitively), or None."""
    if not candidates or len(word) > 100:
        return None
    folded = {c.casefold(): c for c in candidates}
    match = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


def check_characters(text: str) -> str | None:
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


def tokenize(text: str) -> list[Token]:
    """Split text into words; whitespace separates, quotes group (an unmatched quote is literal).

    A quote opens a quoted run at the start of a word or right after `=` (`--reason="a b"`).
    Quoted runs keep their whitespace; `quoted` tokens are never options or subcommands.
    """
    tokens: list[Token] = []
    buf: list[str] = []
    in_word = False
    quoted = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            if in_word:
                tokens.append(Token("".join(buf), quoted))
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
        tokens.append(Token("".join(buf), quoted))
    return tokens


def _is_option(token: Token) -> bool:
    """True for an unquoted word that looks like an option (`--x`, `-x`), not `-` or `-5`."""
    text = token.text
    return (
        not token.quoted
        and len(text) > 1
        and text.startswith("-")
        and not _NEGATIVE_NUMBER_RE.fullmatch(text)
    )


def _ends_words(token: Token, short_names: Collection[str]) -> bool:
    """True if `token` ends a `--reason` phrase: a `--option` or a known short option."""
    if token.quoted:
        return False
    text = token.text
    return (text.startswith("--") and len(text) > 2) or text.lower() in short_names


def split_options(
    tokens: Sequence[Token], options: Sequence[Option]
) -> tuple[list[Token], dict[str, str | bool]]:
    """Separate positional words from options; raise `Fail` on unknown/misused options."""
    by_name = {name: spec for spec in options for name in (spec.name, *spec.aliases)}
    short_names = [name for name in by_name if not name.startswith("--")]
    positional: list[Token] = []
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
            raise _unknown_option(raw, list(by_name), options)
        if option.kind != "flag" and option.name in values:
            raise Fail(f"option '{option.name}' given more than once")
        if option.kind == "flag":
            if inline is not None:
                raise Fail(f"option '{option.name}' takes no value")
            values[option.name] = True
        elif option.kind == "value":
            if inline is None and i < len(tokens) and not _ends_words(tokens[i], short_names):
                inline = tokens[i].text
                i += 1
            if not inline:
                raise Fail(f"option '{option.name}' needs a value")
            values[option.name] = inline
        else:
            words = [inline] if inline is not None else []
            while i < len(tokens) and not _ends_words(tokens[i], short_names):
                words.append(tokens[i].text)
                i += 1
            phrase = " ".join(" ".join(words).split())
            if not phrase:
                raise Fail(f"option '{option.name}' needs a value")
            values[option.name] = phrase
    return positional, values


def _unknown_option(raw: str, names: Sequence[str], options: Sequence[Option]) -> Fail:
    """The failure for option `raw`, which is none of `names`: with the closest name, or the list."""
    if not names:
        return Fail(f"unknown option {show(raw)}; this command takes no options")
    close = suggest(raw.lower(), names)
    if close is not None:
        return Fail(f"unknown option {show(raw)}; did you mean '{close}'?")
    return Fail(f"unknown option {show(raw)}; options: {', '.join(o.name for o in options)}")
