"""Tests for the chat command parser (`commands.parser`) and help text (`commands.help`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.help import (
    COMMAND_DESCRIPTIONS,
    COMMAND_USAGE_HINTS,
    COMMANDS,
    GENERAL_USAGE,
    USAGE,
    help_text,
)
from commands.model import (
    Abort,
    Cancel,
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
from commands.parser import parse
from commands.refs import SHELL_METACHARACTERS, is_valid_ref, ref_problem

ENVS = ("dev", "staging", "prod", "EU-West")
COMMAND_TYPES = (
    Deploy,
    Lock,
    Unlock,
    History,
    Abort,
    Cancel,
    Stats,
    Help,
    Rollback,
    Status,
    Signoff,
    ParseError,
)


def p(command: str, text: str = "") -> object:
    """Parse with the default environments."""
    return parse(command, text, ENVS)


def err(command: str, text: str = "") -> ParseError:
    """Parse and assert the result is a ParseError; return it."""
    result = p(command, text)
    assert isinstance(result, ParseError), result
    return result


# --- /deploy -------------------------------------------------------------------------------


def test_deploy_env_only() -> None:
    assert p("/deploy", "prod") == Deploy(env="prod")


def test_deploy_full() -> None:
    result = p("/deploy", "prod v1.4.2 --reason hotfix for login --dry-run --force --at 22:00")
    assert result == Deploy(
        env="prod", ref="v1.4.2", reason="hotfix for login", dry_run=True, force=True, at="22:00"
    )


def test_deploy_flags_any_order() -> None:
    expected = Deploy(env="prod", ref="main", reason="a b", dry_run=True, force=True, at="22:00")
    assert p("/deploy", "prod main --at 22:00 --force --reason a b -n") == expected
    assert p("/deploy", "prod main --force --reason a b --at 22:00 --dry-run") == expected
    assert p("/deploy", "prod --reason a b --force main --at=22:00 -n") == expected


def test_deploy_ref_after_flags() -> None:
    assert p("/deploy", "prod --force main") == Deploy(env="prod", ref="main", force=True)


def test_deploy_reason_quotes() -> None:
    assert p("/deploy", 'prod --reason "fix --force  bug" -n') == Deploy(
        env="prod", reason="fix --force bug", dry_run=True
    )
    assert p("/deploy", "prod --reason 'single quoted'") == Deploy(env="prod", reason="single quoted")


def test_deploy_reason_smart_quotes() -> None:
    assert p("/deploy", "prod --reason “login is --broken”") == Deploy(env="prod", reason="login is --broken")
    assert p("/deploy", "prod --reason ‘it’s fine’ --force") == Deploy(
        env="prod", reason="it’s fine", force=True
    )
    assert p("/deploy", "prod --reason 'it's fine' -n") == Deploy(
        env="prod", reason="it's fine", dry_run=True
    )
    assert p("/deploy", 'prod --reason "a"b c') == Deploy(env="prod", reason="ab c")


def test_deploy_reason_equals_forms() -> None:
    assert p("/deploy", 'prod --reason="two words" more') == Deploy(env="prod", reason="two words more")
    assert p("/deploy", "prod --reason=one") == Deploy(env="prod", reason="one")


def test_deploy_reason_keeps_apostrophes_and_dashes() -> None:
    assert p("/deploy", "prod --reason don't panic - it's -1 day") == Deploy(
        env="prod", reason="don't panic - it's -1 day"
    )


def test_deploy_reason_whitespace_collapsed() -> None:
    assert p("/deploy", "prod --reason  a\t\tb\n c  ") == Deploy(env="prod", reason="a b c")
    assert p("/deploy", 'prod --reason "a\nb"') == Deploy(env="prod", reason="a b")


def test_deploy_at_iso() -> None:
    assert p("/deploy", "prod --at 2026-11-23T22:00") == Deploy(env="prod", at="2026-11-23T22:00")
    assert p("/deploy", "prod --at=2026-11-23T22:00:00+01:00") == Deploy(
        env="prod", at="2026-11-23T22:00:00+01:00"
    )
    assert p("/deploy", 'prod --at "2026-11-23 22:00"') == Deploy(env="prod", at="2026-11-23 22:00")
    assert p("/deploy", "prod --at 9:30") == Deploy(env="prod", at="9:30")


@pytest.mark.parametrize("value", ["25:00", "22:61", "tomorrow", "2026-13-01T00:00", "2026-11-23", "22h"])
def test_deploy_at_invalid(value: str) -> None:
    e = err("/deploy", f"prod --at {value}")
    assert "invalid time" in e.message and "--at" in e.message
    assert e.usage == USAGE["deploy"]


def test_deploy_at_missing_value() -> None:
    assert err("/deploy", "prod --at").message == "option '--at' needs a value"
    assert err("/deploy", "prod --at --force").message == "option '--at' needs a value"


def test_deploy_reason_missing_value() -> None:
    assert err("/deploy", "prod --reason").message == "option '--reason' needs a value"
    assert err("/deploy", "prod --reason -n").message == "option '--reason' needs a value"
    assert err("/deploy", 'prod --reason ""').message == "option '--reason' needs a value"


def test_deploy_duplicate_value_option() -> None:
    assert "more than once" in err("/deploy", "prod --reason a --reason b").message


def test_deploy_flag_with_value() -> None:
    assert err("/deploy", "prod --force=yes").message == "option '--force' takes no value"


def test_deploy_unknown_option_suggests() -> None:
    e = err("/deploy", "prod --frce")
    assert e.message == "unknown option '--frce'; did you mean '--force'?"
    assert e.usage == USAGE["deploy"]
    assert "did you mean '--dry-run'" in err("/deploy", "prod --dryrun").message
    assert "did you mean '--reason'" in err("/deploy", "prod --reason x --reasn y").message


def test_deploy_unknown_option_no_suggestion_lists_options() -> None:
    e = err("/deploy", "prod --zzzzzzzz")
    assert "unknown option '--zzzzzzzz'" in e.message and "--force" in e.message


def test_deploy_option_case_insensitive() -> None:
    assert p("/deploy", "prod --FORCE -N") == Deploy(env="prod", force=True, dry_run=True)


def test_quoted_flag_is_not_an_option() -> None:
    e = err("/deploy", 'prod "--force"')
    assert "invalid ref '--force'" in e.message and "starts with '-'" in e.message


def test_deploy_missing_env() -> None:
    e = err("/deploy", "--force")
    assert e.message == "missing environment"
    assert e.usage == USAGE["deploy"]


def test_deploy_extra_positional() -> None:
    e = err("/deploy", "prod main hotfix")
    assert "unexpected argument 'hotfix'" in e.message and "--reason" in e.message


def test_deploy_hash_ref_points_to_rollback() -> None:
    assert "/rollback" in err("/deploy", "prod #42").message


def test_deploy_hex_sha_ref() -> None:
    assert p("/deploy", "prod deadbeef") == Deploy(env="prod", ref="deadbeef")
    assert p("/deploy", "prod " + "a" * 40) == Deploy(env="prod", ref="a" * 40)


# --- environments ---------------------------------------------------------------------------


def test_unknown_env_with_suggestion() -> None:
    e = err("/deploy", "prd")
    assert e.message.startswith("unknown environment 'prd';")
    assert "did you mean 'prod'?" in e.message
    assert "known: EU-West, dev, prod, staging" in e.message


def test_unknown_env_without_suggestion() -> None:
    e = err("/deploy", "zzz")
    assert e.message == "unknown environment 'zzz'; known: EU-West, dev, prod, staging"


def test_env_case_insensitive_exact_match() -> None:
    assert p("/deploy", "PROD") == Deploy(env="prod")
    assert p("/deploy", "eu-west") == Deploy(env="EU-West")
    assert p("/status", "Staging") == Status(env="staging")


def test_env_case_ambiguous() -> None:
    result = parse("/deploy", "PROD", ["Prod", "prod"])
    assert isinstance(result, ParseError) and "ambiguous environment" in result.message
    assert parse("/deploy", "prod", ["Prod", "prod"]) == Deploy(env="prod")


def test_no_environments_configured() -> None:
    result = parse("/deploy", "prod", [])
    assert isinstance(result, ParseError) and "no environments are configured" in result.message


def test_environments_may_be_any_collection() -> None:
    assert parse("/deploy", "prod", {"prod"}) == Deploy(env="prod")
    assert parse("/deploy", "prod", frozenset({"prod", "dev"})) == Deploy(env="prod")


def test_subcommand_words_take_precedence_over_env_names() -> None:
    envs = ["lock", "help", "stats", "prod"]
    assert parse("/deploy", "lock prod", envs) == Lock(env="prod")
    assert parse("/deploy", "help", envs) == Help(None)
    assert parse("/deploy", "stats prod", envs) == Stats(env="prod")
    assert parse("/deploy", '"lock"', envs) == Deploy(env="lock")  # quoting escapes the keyword


# --- subcommands ----------------------------------------------------------------------------


def test_lock_unlock() -> None:
    assert p("/deploy", "lock prod") == Lock(env="prod")
    assert p("/deploy", "lock prod release freeze   until Monday") == Lock(
        env="prod", reason="release freeze until Monday"
    )
    assert p("/deploy", "LOCK prod --reason freeze") == Lock(env="prod", reason="freeze")
    assert p("/deploy", "unlock prod") == Unlock(env="prod")
    assert p("/deploy", "unlock staging done now") == Unlock(env="staging", reason="done now")


def test_lock_errors() -> None:
    e = err("/deploy", "lock")
    assert e.message == "missing environment" and e.usage == USAGE["lock"]
    assert err("/deploy", "unlock").usage == USAGE["unlock"]
    assert "either as words or with --reason" in err("/deploy", "lock prod a --reason b").message
    assert "did you mean 'prod'" in err("/deploy", "lock prdo").message


def test_history() -> None:
    assert p("/deploy", "history prod") == History(env="prod", limit=10)
    assert p("/deploy", "history prod --limit 25") == History(env="prod", limit=25)
    assert p("/deploy", "history prod --limit=1") == History(env="prod", limit=1)
    assert p("/deploy", "history prod --limit 100") == History(env="prod", limit=100)


@pytest.mark.parametrize("value", ["0", "101", "-5", "abc", "1.5", "١٢", "99999999999"])
def test_history_limit_invalid(value: str) -> None:
    e = err("/deploy", f"history prod --limit {value}")
    assert e.message.startswith("--limit must be a whole number from 1 to 100")
    assert e.usage == USAGE["history"]


def test_history_wrong_option() -> None:
    e = err("/deploy", "history prod --days 5")
    assert "unknown option '--days'" in e.message
    assert e.usage == USAGE["history"]


def test_stats() -> None:
    assert p("/deploy", "stats prod") == Stats(env="prod", days=30)
    assert p("/deploy", "stats prod --days 365") == Stats(env="prod", days=365)
    assert p("/deploy", "stats prod --days=7") == Stats(env="prod", days=7)
    e = err("/deploy", "stats prod --days 366")
    assert "--days must be a whole number from 1 to 365" in e.message and e.usage == USAGE["stats"]
    assert "did you mean '--days'" in err("/deploy", "stats prod --day 5").message


def test_abort() -> None:
    assert p("/deploy", "abort prod") == Abort(env="prod")
    e = err("/deploy", "abort prod now")
    assert e.message == "unexpected argument 'now'" and e.usage == USAGE["abort"]
    assert "takes no options" in err("/deploy", "abort prod --force").message


def test_cancel() -> None:
    assert p("/deploy", "cancel 42") == Cancel(deploy_id=42)
    assert p("/deploy", "cancel #42") == Cancel(deploy_id=42)
    assert err("/deploy", "cancel").message == "missing deploy id"
    assert err("/deploy", "cancel").usage == USAGE["cancel"]


@pytest.mark.parametrize("value", ["abc", "#", "#x1", "4 2", "0", "#0", "-3", "1" * 30, "٤٢"])
def test_cancel_invalid_id(value: str) -> None:
    e = err("/deploy", f"cancel {value}")
    assert "deploy id" in e.message or "unexpected argument" in e.message
    assert e.usage == USAGE["cancel"]


# --- help -----------------------------------------------------------------------------------


def test_help_forms() -> None:
    assert p("/deploy") == Help(None)
    assert p("/deploy", "   \n\t ") == Help(None)
    assert p("/deploy", "help") == Help(None)
    assert p("/deploy", "help lock") == Help("lock")
    assert p("/deploy", "HELP /Rollback") == Help("rollback")
    assert p("/rollback", "help") == Help("rollback")
    assert p("/status", "help") == Help("status")
    assert p("/signoff", "help") == Help("signoff")
    assert p("/deploy", "prod --help") == Help("deploy")
    assert p("/deploy", "history -h") == Help("history")
    assert p("/rollback", "prod --help") == Help("rollback")


def test_help_extra_argument() -> None:
    assert "unexpected argument 'extra'" in err("/deploy", "help lock extra").message
    assert "unexpected argument" in err("/rollback", "help me").message


def test_help_text_overview_lists_every_command() -> None:
    text = help_text(None)
    for usage in USAGE.values():
        assert usage in text
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize("topic", sorted(USAGE))
def test_help_text_topic(topic: str) -> None:
    text = help_text(topic)
    assert USAGE[topic] in text
    assert "Example" in text
    assert len(text.splitlines()) <= 8
    assert help_text("/" + topic.upper()) == text


@pytest.mark.parametrize(
    ("topic", "says", "never"),
    [
        # /signoff posts the sign-off checklist for what runs now; it approves nothing
        ("signoff", ("sign-off checklist", "runs now", "Keep", "Roll back"), ("waiting for approval",)),
        ("status", ("check results", "in flight", "monitoring"), ()),
        ("stats", ("DORA",), ()),
        ("rollback", ("history", "approval"), ()),
        ("deploy", ("break-glass", "exact commands", "time zone"), ("skips checks your role may skip",)),
        ("abort", ("current batch", "cancelled", "rollback"), ()),
        ("unlock", ("after an automatic rollback",), ("some setups",)),
    ],
)
def test_help_says_what_the_command_does(topic: str, says: tuple[str, ...], never: tuple[str, ...]) -> None:
    text = help_text(topic)
    command = "/" + topic if "/" + topic in COMMAND_DESCRIPTIONS else None
    short = COMMAND_DESCRIPTIONS.get(command or "", "")
    for phrase in says:
        assert phrase in text, (topic, phrase)
    for phrase in never:
        assert phrase not in text and phrase not in short, (topic, phrase)
    if topic == "signoff":
        assert "sign-off checklist" in short and "approval" not in short


def test_help_text_unknown_topic() -> None:
    text = help_text("frobnicate")
    assert "No help for 'frobnicate'" in text
    assert "deploy" in text and "rollback" in text and "signoff" in text


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_help_text_never_raises(topic: str) -> None:
    assert isinstance(help_text(topic), str)


def test_command_constants() -> None:
    assert COMMANDS == ("/deploy", "/rollback", "/status", "/signoff")
    assert set(COMMAND_DESCRIPTIONS) == set(COMMANDS)
    assert set(COMMAND_USAGE_HINTS) == set(COMMANDS)
    assert all(0 < len(d) <= 100 for d in COMMAND_DESCRIPTIONS.values())
    required = {"deploy", "lock", "unlock", "history", "abort", "cancel", "stats", "rollback", "status"}
    assert required | {"signoff"} <= set(USAGE)
    assert all("\n" not in u for u in USAGE.values())


# --- /rollback, /status, /signoff -----------------------------------------------------------


def test_rollback() -> None:
    assert p("/rollback", "prod") == Rollback(env="prod")
    assert p("/rollback", "prod to #41") == Rollback(env="prod", target_id=41)
    assert p("/rollback", "prod to 41") == Rollback(env="prod", target_id=41)
    assert p("/rollback", "prod to v1.4.1") == Rollback(env="prod", target_ref="v1.4.1")
    assert p("/rollback", "prod TO release/2026-11") == Rollback(env="prod", target_ref="release/2026-11")
    assert p("/rollback", "prod #41") == Rollback(env="prod", target_id=41)
    assert p("/rollback", "prod to #41 --reason error rate up") == Rollback(
        env="prod", target_id=41, reason="error rate up"
    )
    assert p("/rollback", "prod --reason=“bad deploy”") == Rollback(env="prod", reason="bad deploy")
    # --reason swallows the words after it, so an env after it is missing
    assert err("/rollback", "--reason=“bad deploy” prod").message == "missing environment"


def test_rollback_errors() -> None:
    e = err("/rollback", "")
    assert e.message == "missing environment" and e.usage == USAGE["rollback"]
    assert "missing target after 'to'" in err("/rollback", "prod to").message
    assert "unexpected argument 'x'" in err("/rollback", "prod to #41 x").message
    assert "invalid deploy id '#abc'" in err("/rollback", "prod to #abc").message
    e = err("/rollback", "prod to a..b")
    assert "invalid ref 'a..b'" in e.message and "'..'" in e.message
    assert "unknown option '--force'" in err("/rollback", "prod --force").message


def test_status() -> None:
    assert p("/status") == Status()
    assert p("/status", "prod") == Status(env="prod")
    e = err("/status", "prod dev")
    assert e.message == "unexpected argument 'dev'" and e.usage == USAGE["status"]
    assert "unknown environment 'nope'" in err("/status", "nope").message


def test_signoff() -> None:
    assert p("/signoff", "prod") == Signoff(env="prod")
    e = err("/signoff", "")
    assert e.message == "missing environment" and e.usage == USAGE["signoff"]
    assert "unexpected argument" in err("/signoff", "prod now").message


# --- command name, whitespace, length, control characters ----------------------------------


@pytest.mark.parametrize("command", ["/deploy", "deploy", "/DEPLOY", "  /Deploy  ", "DePlOy"])
def test_command_name_forms(command: str) -> None:
    assert parse(command, "prod", ENVS) == Deploy(env="prod")


def test_unknown_command() -> None:
    e = err("/foo", "prod")
    assert e.message == "unknown command '/foo'"
    assert e.usage == GENERAL_USAGE
    assert err("foo").message == "unknown command '/foo'"
    assert err("").message.startswith("unknown command")
    assert len(err("/" + "x" * 10_000).message) < 100


def test_whitespace_is_separator() -> None:
    assert p("/deploy", "\n\tprod\t\tmain\n--force  \n") == Deploy(env="prod", ref="main", force=True)
    assert p("/deploy", "prod\r\nmain") == Deploy(env="prod", ref="main")
    assert p("/deploy", "prod\u00a0main") == Deploy(env="prod", ref="main")


def test_too_long() -> None:
    e = err("/deploy", "prod --reason " + "x" * 4000)
    assert e.message.startswith("command too long")
    assert e.usage == USAGE["deploy"]
    assert isinstance(p("/deploy", "prod --reason " + "x " * 1990), Deploy)
    assert err("/status", "x" * 100_000).message.startswith("command too long")


@pytest.mark.parametrize("char", ["\0", "\x01", "\x1b", "\x7f", "\x0b", "\x85"])
def test_control_characters(char: str) -> None:
    e = err("/deploy", f"prod --reason a{char}b")
    assert e.message.startswith("command contains a control character")
    assert e.usage == USAGE["deploy"]


def test_nul_named() -> None:
    assert err("/rollback", "prod\0").message == "command contains a control character (NUL)"


def test_unbalanced_quotes_do_not_break_parsing() -> None:
    assert p("/deploy", 'prod --reason "it is broken') == Deploy(env="prod", reason='"it is broken')
    assert "shell metacharacter" in err("/deploy", 'prod "main').message
    assert p("/deploy", "prod --reason “smart") == Deploy(env="prod", reason="“smart")


def test_error_messages_escape_odd_characters() -> None:
    e = err("/deploy", "pr\u202eod")
    assert "\u202e" not in e.message and "\\u202e" in e.message


# --- refs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    ["main", "v1.4.2", "feature/login-fix", "release/2026.11", "a", "HEAD", "abcd", "users/x_y+z", "ünïcode"],
)
def test_valid_refs(ref: str) -> None:
    assert is_valid_ref(ref)
    assert p("/deploy", f"prod {ref}") == Deploy(env="prod", ref=ref)


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("a..b", "'..'"),
        ("a~1", "'~'"),
        ("a^", "'^'"),
        ("a:b", "':'"),
        ("a?", "'?'"),
        ("a*", "'*'"),
        ("a[b", "'['"),
        ("a\\b", "'\\\\'"),
        ("-main", "starts with '-'"),
        ("/main", "starts with '/'"),
        ("main/", "ends with '/'"),
        ("main.lock", "'.lock'"),
        ("a/b.lock/c", "'.lock'"),
        ("main.", "ends with '.'"),
        ("a@{1}", "shell metacharacter"),
        ("a//b", "'//'"),
        (".hidden", "starting with '.'"),
        ("a/.b", "starting with '.'"),
        ("@", "'@'"),
        ("x" * 256, "too long"),
        ("a\u200bb", "control character"),
    ],
)
def test_invalid_refs(ref: str, problem: str) -> None:
    found = ref_problem(ref)
    assert found is not None and problem in found, found
    assert not is_valid_ref(ref)
    e = err("/rollback", f'prod to "{ref}"')  # quoted, so '-main' is not taken for an option
    assert "invalid ref" in e.message and problem in e.message
    assert e.usage == USAGE["rollback"]


@pytest.mark.parametrize("char", list(SHELL_METACHARACTERS))
def test_shell_metacharacters_rejected(char: str) -> None:
    ref = f"main{char}x"
    e = err("/deploy", f'prod "{ref}"' if char != '"' else f"prod '{ref}'")
    assert "shell metacharacter" in e.message and repr(char) in e.message
    assert ref_problem(ref) is not None


def test_ref_max_length() -> None:
    assert is_valid_ref("x" * 255)
    assert not is_valid_ref("x" * 256)
    assert not is_valid_ref("")


# --- property-based -------------------------------------------------------------------------

WORDS = [
    "prod",
    "PROD",
    "dev",
    "staging",
    "EU-West",
    "lock",
    "unlock",
    "history",
    "abort",
    "cancel",
    "stats",
    "help",
    "to",
    "main",
    "v1.2",
    "feature/x",
    "#42",
    "42",
    "0",
    "-5",
    "deadbeef",
    "a..b",
    "x;rm",
    "$(id)",
    "`id`",
    "a|b",
    "22:00",
    "2026-11-23T22:00",
    "don't",
    "",
]
FLAGS = [
    "--reason",
    "--reason=",
    "--reason=x",
    "--dry-run",
    "-n",
    "--force",
    "--at",
    "--at=22:00",
    "--limit",
    "--limit=5",
    "--days",
    "--days=400",
    "--frce",
    "--",
    "-",
    "--help",
    "-h",
    "--force=1",
]
PUNCT = ['"', "'", "“", "”", "‘", "’", ";", "|", "&", "$", "<", ">", "(", ")", "{", "}", "`", "\\", "="]
SEPARATORS = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", ""]

fragments = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(FLAGS),
    st.sampled_from(PUNCT),
    st.text(max_size=8),
)
grammarish = st.lists(st.tuples(fragments, st.sampled_from(SEPARATORS)), max_size=25).map(
    lambda parts: "".join(a + b for a, b in parts)
)
commands = st.one_of(
    st.sampled_from(["/deploy", "/rollback", "/status", "/signoff", "deploy", "/STATUS", "/foo", ""]),
    st.text(max_size=20),
)
environments = st.one_of(
    st.just(list(ENVS)),
    st.lists(st.text(max_size=10), max_size=5),
    st.just(["lock", "help", "prod", "Prod"]),
)


def _accepted_refs(result: object) -> list[str]:
    """The refs a successful parse would hand on."""
    if isinstance(result, Deploy) and result.ref is not None:
        return [result.ref]
    if isinstance(result, Rollback) and result.target_ref is not None:
        return [result.target_ref]
    return []


def _check_result(result: object) -> None:
    assert isinstance(result, COMMAND_TYPES)
    if isinstance(result, ParseError):
        assert result.message and result.usage
        assert len(result.message) < 1000
    for ref in _accepted_refs(result):
        assert not any(c in SHELL_METACHARACTERS for c in ref)
        assert not any(c.isspace() for c in ref)
        assert ref and not ref.startswith("-")
        assert is_valid_ref(ref)


@given(st.text(), st.text())
@settings(max_examples=500, deadline=None)
def test_parse_never_raises_on_arbitrary_text(command: str, text: str) -> None:
    for name in ("/deploy", "/rollback", "/status", "/signoff", command):
        _check_result(parse(name, text, ENVS))


@given(commands, grammarish, environments)
@settings(max_examples=500, deadline=None)
def test_parse_never_raises_on_grammarish_text(command: str, text: str, envs: list[str]) -> None:
    result = parse(command, text, envs)
    _check_result(result)
    assert parse(command, text, envs) == result  # pure: same input, same output


@given(grammarish)
@settings(max_examples=300, deadline=None)
def test_accepted_refs_are_safe(text: str) -> None:
    for command in ("/deploy", "/rollback"):
        for prefix in ("prod ", "prod to "):
            _check_result(parse(command, prefix + text, ENVS))


@given(st.text(min_size=1, max_size=300))
@settings(max_examples=300, deadline=None)
def test_ref_problem_agrees_with_safety(ref: str) -> None:
    if is_valid_ref(ref):
        assert not any(c in SHELL_METACHARACTERS or c.isspace() for c in ref)
        assert ".." not in ref and "@{" not in ref and "//" not in ref
        assert not ref.startswith(("-", "/")) and not ref.endswith(("/", ".", ".lock"))


@given(st.text(max_size=200), st.sampled_from(["/deploy", "/rollback", "/status", "/signoff"]))
@settings(max_examples=100, deadline=None)
def test_overlong_text_rejected(tail: str, command: str) -> None:
    result = parse(command, "prod " + "x" * 3996 + tail, ENVS)
    assert isinstance(result, ParseError) and result.message.startswith("command too long")


ref_strategy = st.from_regex(
    r"[A-Za-z0-9_][A-Za-z0-9_+=-]{0,12}(/[A-Za-z0-9_][A-Za-z0-9_-]{0,8}){0,2}", fullmatch=True
)
reason_word = st.from_regex(r"[A-Za-z0-9,.!?][A-Za-z0-9,.!?'\"“”‘’-]{0,9}", fullmatch=True)


@given(
    env=st.sampled_from(ENVS),
    ref=st.one_of(st.none(), ref_strategy),
    reason=st.one_of(st.none(), st.lists(reason_word, min_size=1, max_size=6)),
    dry_run=st.booleans(),
    force=st.booleans(),
    at=st.one_of(st.none(), st.sampled_from(["22:00", "7:05", "2026-11-23T22:00"])),
    data=st.data(),
)
@settings(max_examples=300, deadline=None)
def test_deploy_round_trip(
    env: str,
    ref: str | None,
    reason: list[str] | None,
    dry_run: bool,
    force: bool,
    at: str | None,
    data: st.DataObject,
) -> None:
    """A deploy line built from parts in any flag order parses back to those parts."""
    flags: list[str] = []
    if reason is not None:
        flags.append("--reason " + " ".join(reason))
    if dry_run:
        flags.append(data.draw(st.sampled_from(["--dry-run", "-n"])))
    if force:
        flags.append("--force")
    if at is not None:
        flags.append(data.draw(st.sampled_from([f"--at {at}", f"--at={at}"])))
    flags = data.draw(st.permutations(flags))
    head = [env] + ([ref] if ref is not None else [])
    text = " ".join(head + flags)
    result = parse("/deploy", text, ENVS)
    assert result == Deploy(
        env=env,
        ref=ref,
        reason=" ".join(reason) if reason is not None else None,
        dry_run=dry_run,
        force=force,
        at=at,
    ), text
