"""The shell-quote scanner: placeholders a step template puts inside quotes (where quoting is undone)."""

from __future__ import annotations

import re

from runners.template import placeholders

_PLACEHOLDER_AT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


_HEREDOC_WORD = re.compile(r"""[ \t]*((?:[^\s;&|<>()'"\\]|'[^']*'|"[^"]*"|\\.)+)""")


def quoted_placeholders(template: str) -> list[tuple[str, str]]:
    """`(where, name)` for each placeholder a step template puts inside shell quotes.

    Placeholders are substituted shell-quoted (`'v1.2'`), which is safe only where the shell
    reads them bare: inside `"..."` or `'...'` the added quotes are literal text and a value
    like `$(touch x)` is expanded again; in an unquoted here-document body they are literal
    too, and `$(...)` runs. The scan follows POSIX sh quoting: backslash escapes, single,
    double and `$'...'` quotes, comments, and here-documents (`<<EOF`; a quoted delimiter
    such as `<<'EOF'` turns expansion off, so placeholders there are harmless).
    """
    out: list[tuple[str, str]] = []
    quote: str | None = None  # "'", '"' or "$'"
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, strip tabs, expands)
    where = {"'": "single quotes", '"': "double quotes", "$'": "$'...' quotes"}
    i, n = 0, len(template)
    while i < n:
        if template.startswith(("{{", "}}"), i):
            i += 2
            continue
        m = _PLACEHOLDER_AT.match(template, i)
        if m:
            if quote is not None:
                out.append((where[quote], m.group(1)))
            i = m.end()
            continue
        c = template[i]
        if quote == "'":
            quote = None if c == "'" else quote
            i += 1
            continue
        if quote is not None:  # double quotes or $'...': backslash escapes the next character
            if c == "\\":
                i += 2
                continue
            if (quote == '"' and c == '"') or (quote == "$'" and c == "'"):
                quote = None
            i += 1
            continue
        if c == "\\":
            i += 2
        elif c in "'\"":
            quote = c
            i += 1
        elif template.startswith("$'", i):
            quote = "$'"
            i += 2
        elif c == "#" and (i == 0 or template[i - 1] in " \t\n;&|("):
            newline = template.find("\n", i)
            i = n if newline == -1 else newline
        elif template.startswith("<<", i) and not template.startswith("<<<", i):
            j = i + 2
            strip = template.startswith("-", j)
            j += 1 if strip else 0
            word = _HEREDOC_WORD.match(template, j)
            if word is None:
                i = j
                continue
            text = word.group(1)
            expands = not any(q in text for q in "'\"\\")
            delimiter = re.sub(r"""\\(.)|['"]""", lambda w: w.group(1) or "", text)
            heredocs.append((delimiter, strip, expands))
            i = word.end()
        elif c == "\n" and heredocs:
            i += 1
            for delimiter, strip, expands in heredocs:
                while i < n:
                    end = template.find("\n", i)
                    end = n if end == -1 else end
                    line = template[i:end]
                    i = end + 1
                    if (line.lstrip("\t") if strip else line) == delimiter:
                        break
                    if expands:
                        out.extend(("a here-document", name) for name in placeholders(line))
            heredocs = []
        else:
            i += 1
    return out
