"""Step command templates: `{name}` placeholders substituted shell-quoted.

Every value that reaches a shell goes through `shlex.quote`, so a ref or reason typed in chat
can never become shell syntax. Unknown placeholders are an error at config-check time. Upload
paths (`render_path`) never reach a shell: values go in as they are, and a path that climbs out
with `..`, or holds a newline or NUL, is refused.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping

#: `{name}`, or a dotted one: `{host.address}`, `{host.vars.port}`, `{artifact.backup_path}`.
PLACEHOLDER_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(" + PLACEHOLDER_NAME + r")\}")

#: The variables every deploy defines; the config checker accepts these plus `[vars]` names.
STANDARD_VARS = (
    "ref",
    "sha",
    "deploy_id",
    "env",
    "release_id",
    "release_dir",
    "releases_dir",
    "current_dir",
    "deploy_to",
    "previous_release_dir",
    "host",
    "host.name",
    "host.address",
    "requester",
    "config_dir",
    "data_dir",
    "keep_releases",
)


#: `{artifact.NAME}`: a value an earlier step published; `{host.vars.NAME}`: the host's own variable.
ARTIFACT_PREFIX = "artifact."
HOST_VARS_PREFIX = "host.vars."


class TemplateError(ValueError):
    """A template names a variable that is not defined."""


def placeholders(template: str) -> list[str]:
    """The variable names a template uses, in order of appearance."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


def unknown_placeholders(template: str, known: Iterable[str]) -> list[str]:
    """Placeholders in `template` that are not in `known`."""
    known_set = set(known)
    return [name for name in placeholders(template) if name not in known_set]


def render(template: str, variables: Mapping[str, object]) -> str:
    """Substitute `{name}` with the shell-quoted value; `{{`/`}}` give literal braces."""
    return _substitute(template, variables, shlex.quote)


def render_path(template: str, variables: Mapping[str, object]) -> str:
    """An upload path: `{name}` substituted as is; TemplateError for `..`, newlines or NUL."""
    path = _substitute(template, variables, str)
    if "\n" in path or "\0" in path or ".." in path.split("/"):
        raise TemplateError(f"refusing upload path {path!r}: no '..' parts, newlines or NUL bytes")
    return path


def _substitute(template: str, variables: Mapping[str, object], quote: Callable[[str], str]) -> str:
    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group(1)
        if name not in variables:
            if name.startswith(ARTIFACT_PREFIX):
                raise TemplateError(
                    f"artifact {name.removeprefix(ARTIFACT_PREFIX)!r} was not published "
                    "(the step that publishes it did not run or did not print it)"
                )
            if name.startswith(HOST_VARS_PREFIX):
                raise TemplateError(f"{{{name}}}: this host has no such variable in hosts[].vars")
            raise TemplateError(f"unknown variable {{{name}}} in step command")
        return quote(str(variables[name]))

    return _PLACEHOLDER.sub(sub, template)
