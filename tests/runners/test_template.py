"""Step templates: everything from chat is shell-quoted."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from runners.template import TemplateError, placeholders, render


def test_values_are_quoted_and_braces_escape() -> None:
    assert render("echo {ref} {{literal}}", {"ref": "v1; rm -rf /"}) == "echo 'v1; rm -rf /' {literal}"
    assert placeholders("a {x} {{y}} {z}") == ["x", "z"]


def test_unknown_variable_is_an_error() -> None:
    try:
        render("echo {nope}", {})
    except TemplateError as exc:
        assert "{nope}" in str(exc)
    else:
        raise AssertionError("expected TemplateError")


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
)
def test_any_value_reaches_the_shell_as_one_literal_argument(value: str) -> None:
    command = render("printf '%s' {v}", {"v": value})
    out = subprocess.run(["/bin/sh", "-c", command], capture_output=True).stdout.decode(
        "utf-8", "surrogateescape"
    )
    assert out == value
