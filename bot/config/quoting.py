"""The shell-quote scanner: placeholders a step template puts inside quotes (where quoting is undone).

Step templates are checked at load time; the scan is a small state machine (`_Scan`): the open
quote, if any, and the here-documents whose bodies start at the next newline.
"""

from __future__ import annotations

import re

from runners.template import PLACEHOLDER_NAME, placeholders

_PLACEHOLDER_AT = re.compile(r"\{(" + PLACEHOLDER_NAME + r")\}")
_HEREDOC_WORD = re.compile(r"""[ \t]*((?:[^\s;&|<>()'"\\]|'[^']*'|"[^"]*"|\\.)+)""")
_WHERE = {"'": "single quotes", '"': "double quotes", "$'": "$'...' quotes"}


def quoted_placeholders(template: str) -> list[tuple[str, str]]:
    """`(where, name)` for each placeholder a step template puts inside shell quotes.

    Placeholders are substituted shell-quoted (`'v1.2'`), which is safe only where the shell
    reads them bare: inside `"..."` or `'...'` the added quotes are literal text and a value
    like `$(touch x)` is expanded again; in an unquoted here-document body they are literal
    too, and `$(...)` runs. The scan follows POSIX sh quoting: backslash escapes, single,
    double and `$'...'` quotes, comments, and here-documents (`<<EOF`; a quoted delimiter
    such as `<<'EOF'` turns expansion off, so placeholders there are harmless).
    """
    return _Scan(template).run()


class _Scan:
    """One pass over a template: the position, the open quote and the pending here-documents."""

    def __init__(self, template: str) -> None:
        self.text = template
        self.i = 0
        self.quote: str | None = None  # "'", '"' or "$'"
        self.heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, strip tabs, expands)
        self.found: list[tuple[str, str]] = []

    def run(self) -> list[tuple[str, str]]:
        """Scan to the end; the placeholders found in quotes or here-document bodies."""
        while self.i < len(self.text):
            if self.text.startswith(("{{", "}}"), self.i):
                self.i += 2
            elif m := _PLACEHOLDER_AT.match(self.text, self.i):
                if self.quote is not None:
                    self.found.append((_WHERE[self.quote], m.group(1)))
                self.i = m.end()
            elif self.quote is not None:
                self._quoted()
            else:
                self._bare()
        return self.found

    def _quoted(self) -> None:
        c = self.text[self.i]
        if self.quote == "'":  # nothing escapes inside single quotes
            self.quote = None if c == "'" else self.quote
            self.i += 1
        elif c == "\\":  # double quotes or $'...': backslash escapes the next character
            self.i += 2
        else:
            if (self.quote == '"' and c == '"') or (self.quote == "$'" and c == "'"):
                self.quote = None
            self.i += 1

    def _bare(self) -> None:
        text, i = self.text, self.i
        c = text[i]
        if c == "\\":
            self.i += 2
        elif c in "'\"":
            self.quote = c
            self.i += 1
        elif text.startswith("$'", i):
            self.quote = "$'"
            self.i += 2
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n;&|("):
            newline = text.find("\n", i)
            self.i = len(text) if newline == -1 else newline
        elif text.startswith("<<", i) and not text.startswith("<<<", i):
            self._heredoc_start()
        elif c == "\n" and self.heredocs:
            self.i += 1
            self._heredoc_bodies()
        else:
            self.i += 1

    def _heredoc_start(self) -> None:
        """`<<WORD` or `<<-WORD`: a body to skip after the next newline (quoting WORD stops expansion)."""
        j = self.i + 2
        strip = self.text.startswith("-", j)
        j += 1 if strip else 0
        word = _HEREDOC_WORD.match(self.text, j)
        if word is None:
            self.i = j
            return
        text = word.group(1)
        expands = not any(q in text for q in "'\"\\")
        delimiter = re.sub(r"""\\(.)|['"]""", lambda w: w.group(1) or "", text)
        self.heredocs.append((delimiter, strip, expands))
        self.i = word.end()

    def _heredoc_bodies(self) -> None:
        """The bodies of the pending here-documents, one after the other, up to their delimiters."""
        n = len(self.text)
        for delimiter, strip, expands in self.heredocs:
            while self.i < n:
                end = self.text.find("\n", self.i)
                end = n if end == -1 else end
                line = self.text[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
                if expands:
                    self.found.extend(("a here-document", name) for name in placeholders(line))
        self.heredocs = []
