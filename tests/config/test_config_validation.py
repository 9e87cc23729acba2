"""Config validation found by the audit: freezes, windows, limits, secrets, quoting, defaults.

Each problem is reported once, with its key path, by `parse_config` and `gonogo config check`;
what loads is parsed once (freezes, windows) so a deploy request can never crash on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import (
    DEFAULT_SSH_STEP_TIMEOUT,
    Config,
    ConfigError,
    parse_config,
    quoted_placeholders,
)
from bot.domain.windows import Freeze, Window
from bot.engine import Engine, Refused
from bot.store.sqlite import SqliteStore
from bot.timing.clock import FakeClock
from tests.support.engines import make_engine
from tests.support.recording import RecordingChat

ROOT = Path(__file__).resolve().parents[2]

ENV = """
[environments.prod]
backend = "local"
hosts = ["h1"]
{extra}
[[environments.prod.steps.deploy]]
name = "ship"
run = "true"
"""


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The problems `parse_config` reports for a TOML document (none: the empty list)."""
    try:
        parse_config(tomllib.loads(text), environ=environ or {})
    except ConfigError as exc:
        return exc.problems
    return []


def env_problems(extra: str, *, head: str = "") -> list[str]:
    """Problems of a one-environment config with `extra` lines in `[environments.prod]`."""
    return problems_of(head + ENV.format(extra=extra))


def load(extra: str, *, head: str = "", environ: dict[str, str] | None = None) -> Config:
    """A one-environment config that must load."""
    return parse_config(tomllib.loads(head + ENV.format(extra=extra)), environ=environ or {})


# -- freezes and windows (finding 8) ----------------------------------------------------------
FREEZE_CONFIG = """
[bot]
data_dir = "{data}"
[environments.prod]
backend = "local"
hosts = ["h1"]
timezone = "Europe/Paris"
freezes = [
  {{ start = 2026-12-21, end = 2027-01-03, reason = "holidays" }},
  {{ start = 2027-02-01T18:00:00, end = "2027-02-02T06:00", reason = "db migration" }},
]
[environments.prod.approvals]
required = 1
[[environments.prod.steps.deploy]]
name = "ship"
run = "echo {{ref}} >> {data}/shipped"
"""


@pytest.fixture
def freeze_engine(tmp_path: Path) -> Iterator[tuple[Engine, FakeClock]]:
    config = parse_config(
        tomllib.loads(FREEZE_CONFIG.format(data=tmp_path)), source=tmp_path / "c.toml", environ={}
    )
    clock = FakeClock(datetime(2026, 12, 22, 10, 0, tzinfo=UTC))
    engine = make_engine(config, SqliteStore(tmp_path / "db.sqlite"), RecordingChat(), clock=clock)
    engine.start(run_scheduler=False)
    yield engine, clock
    engine.shutdown()


def test_toml_date_freezes_refuse_deploys_instead_of_crashing(
    freeze_engine: tuple[Engine, FakeClock],
) -> None:
    engine, clock = freeze_engine
    with pytest.raises(Refused, match="holidays"):
        engine.request_deploy("alice", "#d", "prod", "v1")
    clock.set(datetime(2027, 2, 1, 18, 30, tzinfo=UTC))  # 19:30 in Paris: inside the date-time freeze
    with pytest.raises(Refused, match="db migration"):
        engine.request_deploy("alice", "#d", "prod", "v1")
    clock.set(
        datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
    )  # the end date is inclusive: 3 Jan is frozen, 4 Jan is not
    assert engine.request_deploy("alice", "#d", "prod", "v1").id is not None


def test_freezes_and_windows_are_parsed_once_at_load_time(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(FREEZE_CONFIG.format(data=tmp_path)), environ={})
    prod = config.environments["prod"]
    assert all(isinstance(f, Freeze) for f in prod.freeze_periods) and len(prod.freeze_periods) == 2
    assert prod.freeze_periods[0].reason == "holidays"
    assert prod.freeze_periods[0].start == datetime(2026, 12, 20, 23, 0, tzinfo=UTC)
    # the text form stays usable by bot.windows.parse_freeze (what the engine calls today)
    assert prod.freezes[0] == {"start": "2026-12-21", "end": "2027-01-03", "reason": "holidays"}
    windowed = load('windows = ["Mon-Thu 09:00-16:00", "daily 22:00-06:00"]')
    assert [str(w) for w in windowed.environments["prod"].deploy_windows] == [
        "Mon-Thu 09:00-16:00",
        "daily 22:00-06:00",
    ]
    assert all(isinstance(w, Window) for w in windowed.environments["prod"].deploy_windows)


def test_bad_freezes_are_reported_with_their_key_paths() -> None:
    problems = env_problems(
        'freezes = [{ start = "2026-13-45", end = "2026-12-31" }, '
        '{ start = 2026-12-21, end = 2026-12-01 }, { start = 10:00:00, end = 2027-01-01, why = "x" }, '
        '{ end = "2027-01-01" }, "2026-12-24"]'
    )
    assert problems == [
        "environments.prod.freezes[0].start: invalid freeze start '2026-13-45': "
        "use an ISO date (2026-12-20) or date-time (2026-12-20T18:00)",
        "environments.prod.freezes[1].end: freeze end '2026-12-01' is not after its start '2026-12-21'",
        "environments.prod.freezes[2].start: must be a date or a date-time, not a time of day",
        "environments.prod.freezes[2].why: unknown key",
        "environments.prod.freezes[3].start: required (a date like 2026-12-21 or a date-time like 2026-12-21T18:00)",
        'environments.prod.freezes[4]: must be a table like { start = 2026-12-21, end = 2027-01-03, reason = "holidays" }',
    ]


# -- each problem once (finding 9) -------------------------------------------------------------
def test_each_problem_is_reported_once() -> None:
    text = """
[environments.prod]
hosts = [{ name = 7 }]
step_timeout = "soon"
smoke_checks = [""]
[[environments.prod.steps.pre_deploy]]
name = "a"
run = "true"
[[environments.prod.steps.deploy]]
name = 42
run = "true"
[[environments.prod.steps.verify]]
name = "b"
run = "true"
"""
    problems = problems_of(text)
    assert len(problems) == len(set(problems)), problems
    assert [p for p in problems if p.startswith("environments.prod.step_timeout")] == [
        "environments.prod.step_timeout: 'soon' is not a duration like 30, '90s', '15m' or '4h'"
    ]
    assert "environments.prod.steps.deploy[0].name: must be a string, not an integer" in problems
    assert "environments.prod.steps.deploy[0].name: required" not in problems
    assert "environments.prod.hosts[0].name: required" not in problems
    assert problems.count("environments.prod.smoke_checks[0]: must be a non-empty string") == 1


# -- check tables without a type (finding 10) --------------------------------------------------
def test_unknown_check_keys_are_reported_without_a_type() -> None:
    problems = env_problems('checks = [{ name = "web", kind = "http", url = "http://x", colour = 1 }]')
    assert "environments.prod.checks[0].kind: unknown key; did you mean 'type'?" in problems
    assert any(p.startswith("environments.prod.checks[0].colour: unknown key") for p in problems)
    assert any(p.startswith("environments.prod.checks[0].type: required") for p in problems)
    assert not any(".url" in p for p in problems)  # a key some check type knows is not judged yet


# -- values that loaded but made no sense (finding 11) ----------------------------------------
def test_bot_channel_store_password_and_absurd_numbers_are_refused() -> None:
    problems = problems_of(
        '[bot]\nchannel = ""\nstore = "postgresql://gonogo:hunter2@db.internal/gonogo"\n'
        + ENV.format(extra="keep_releases = 99999999999999999999999")
    )
    assert "bot.channel: must not be empty (a channel name like '#deploys' or a channel id)" in problems
    store = [p for p in problems if p.startswith("bot.store:")]
    assert len(store) == 1 and "GONOGO_STORE_URL" in store[0] and "PGPASSWORD" in store[0]
    assert "~/.pgpass" in store[0] and "hunter2" not in "\n".join(problems)
    assert "environments.prod.keep_releases: must be <= 1000" in problems
    query = problems_of(
        '[bot]\nstore = "postgresql://db.internal/gonogo?password=x"\n' + ENV.format(extra="")
    )
    assert any(p.startswith("bot.store: must not contain a password") for p in query)
    # a URL without a password is fine, and the environment variable may hold one
    assert not problems_of('[bot]\nstore = "postgresql://gonogo@db.internal/gonogo"\n' + ENV.format(extra=""))
    fine = parse_config(
        tomllib.loads(ENV.format(extra="")), environ={"GONOGO_STORE_URL": "postgresql://u:pw@db/x"}
    )
    assert fine.bot.store_url == "postgresql://u:pw@db/x"


def test_secret_names_and_monitor_interval_are_checked() -> None:
    problems = env_problems(
        'secrets = ["lower case", "SHOP_TOKEN", "s3cr3t=value", "9LIVES"]\n'
        '[environments.prod.monitor]\ninterval = "0s"'
    )
    assert (
        "environments.prod.secrets[0]: must be an environment variable name like SHOP_DEPLOY_TOKEN "
        "(letters, digits and _)"
    ) in problems
    assert (
        "environments.prod.secrets[2]: must be the NAME of an environment variable holding the secret, "
        "not the secret"
    ) in problems
    assert any(p.startswith("environments.prod.secrets[3]:") for p in problems)
    assert not any(p.startswith("environments.prod.secrets[1]") for p in problems)
    assert "environments.prod.monitor.interval: must be > 0" in problems
    assert "environments.prod.monitor.interval: must be > 0" in env_problems(
        '[environments.prod.monitor]\ninterval = "0s"\nduration = "10m"'
    )


def test_durations_are_bounded() -> None:
    assert "environments.prod.approval_ttl: must be at most a year (366d)" in env_problems(
        'approval_ttl = "99999999999d"'
    )
    assert "environments.prod.approval_ttl: must be at most a year (366d)" in env_problems(
        "approval_ttl = inf"
    )


# -- sign-off checklist limits (finding 12) ----------------------------------------------------
def test_signoff_checklist_has_the_slack_checkbox_limits() -> None:
    items = ", ".join(f'"item {i}"' for i in range(15))
    problems = env_problems(f'signoff_checklist = [{items}, "{"x" * 76}"]')
    assert problems == [
        "environments.prod.signoff_checklist[15]: must be at most 75 characters (Slack checkbox limit)"
    ]  # 16 items are two checkbox groups: that fits
    many = ", ".join(f'"i{i}"' for i in range(201))
    assert env_problems(f"signoff_checklist = [{many}]") == [
        "environments.prod.signoff_checklist: too long for one card: 21 checkbox groups of at most 10 items "
        "(each phase starts one), at most 20 fit Slack's 50 blocks"
    ]
    ten = ", ".join(f'"i{i}"' for i in range(10))
    assert not env_problems(f"signoff_checklist = [{ten}]")


# -- short secret values (finding 13) ----------------------------------------------------------
def test_a_secret_too_short_to_redact_is_warned_about_without_its_value() -> None:
    config = load(
        'secrets = ["SHOP_TOKEN", "LONG_TOKEN"]', environ={"SHOP_TOKEN": "abcd", "LONG_TOKEN": "abcdefgh"}
    )
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert warning.startswith("environments.prod.secrets[0]: the value of SHOP_TOKEN is shorter than 8")
    assert "masked wherever those characters appear" in warning and "abcd" not in warning
    assert load('secrets = ["SHOP_TOKEN"]').warnings == ()  # unset (config check elsewhere): nothing to judge


# -- quoted placeholders (finding 14) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("run", "where"),
    [
        ('echo "deploying {ref}"', "double quotes"),
        ("echo 'deploying {ref}'", "single quotes"),
        ("printf $'%s {ref}\\n'", "$'...' quotes"),
        ("cat > notes <<EOF\ndeploying {ref}\nEOF", "a here-document"),
    ],
)
def test_a_placeholder_inside_quotes_is_refused(run: str, where: str) -> None:
    text = ENV.format(extra="").replace('run = "true"', f"run = '''{run}'''")
    problems = problems_of(text)
    assert problems == [
        f"environments.prod.steps.deploy[0].run: {{ref}} is inside {where}: write {{ref}} bare: values "
        "are quoted for you (inside quotes the quoting is undone and a value could run as shell code)"
    ]


def test_bare_placeholders_and_literal_quotes_are_fine() -> None:
    for run in (
        "printf '%s\\n' {ref} > {release_dir}/VERSION",
        'echo "deploying" {ref} "now"',
        "echo it\\'s {ref}",
        "echo '{{ref}}' is literal",
        "cat <<'EOF'\n{ref} is literal here\nEOF",
        "echo {ref} # not '{sha}' in a comment",
    ):
        assert quoted_placeholders(run) == [], run


def test_example_config_has_no_quoted_placeholders() -> None:
    config_check = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(ROOT / "config.example.toml")],
        capture_output=True,
        text=True,
    )
    assert config_check.returncode == 0, config_check.stdout
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    for env in example["environments"].values():
        for steps in env.get("steps", {}).values():
            for step in steps:
                assert quoted_placeholders(step["run"]) == [], step["run"]


def test_config_check_reports_a_quoted_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(ENV.format(extra="").replace('run = "true"', "run = 'echo \"deploying {ref}\"'"))
    res = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(path)], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert (
        "environments.prod.steps.deploy[0].run: {ref} is inside double quotes: write {ref} bare" in res.stdout
    )


# -- retention and SSH step timeouts (finding 15) ----------------------------------------------
def test_event_retention_days_defaults_to_a_year_and_0_keeps_everything() -> None:
    assert load("").bot.event_retention_days == 365
    assert load("", head="[bot]\nevent_retention_days = 0\n").bot.event_retention_days == 0
    assert "bot.event_retention_days: must be >= 0" in problems_of(
        "[bot]\nevent_retention_days = -1\n" + ENV.format(extra="")
    )


def test_retention_days_defaults_to_30_and_is_checked() -> None:
    assert load("").bot.retention_days == 30
    assert load("", head="[bot]\nretention_days = 7\n").bot.retention_days == 7
    assert "bot.retention_days: must be >= 1" in problems_of(
        "[bot]\nretention_days = 0\n" + ENV.format(extra="")
    )
    assert "bot.retention_days: must be a number or an integer, not a string" not in problems_of(
        "[bot]\nretention_days = 7\n" + ENV.format(extra="")
    )


def test_ssh_steps_always_have_a_timeout() -> None:
    ssh = load("").environments["prod"]
    assert ssh.step_timeout is None  # local: no default
    config = parse_config(
        tomllib.loads(ENV.format(extra="").replace('backend = "local"', 'backend = "ssh"')), environ={}
    )
    prod = config.environments["prod"]
    assert prod.step_timeout == DEFAULT_SSH_STEP_TIMEOUT == 1800
    assert prod.stage("deploy")[0].timeout == 1800
    zero = problems_of(
        ENV.format(extra='step_timeout = "0s"').replace('backend = "local"', 'backend = "ssh"')
    )
    assert zero == [
        "environments.prod.step_timeout: must be > 0 for an ssh environment: a step with no timeout can hang forever"
    ]


def test_config_check_warns_about_a_secret_too_short_to_redact() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "config", "check", str(ROOT / "config.example.toml")],
        capture_output=True,
        text=True,
        env={**os.environ, "SHOP_DEPLOY_TOKEN": "Q9x7"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "environments.prod.secrets[0]: the value of SHOP_DEPLOY_TOKEN is shorter than 8" in res.stderr
    assert "Q9x7" not in res.stdout + res.stderr


def test_allowed_ref_prefixes_and_tag_patterns_are_checked() -> None:
    problems = env_problems(
        'allowed_refs = ["tags:v*", "branch:", "tag:v*"]\ntag_pattern = "deploy/{env}/{n}.lock"'
    )
    assert "environments.prod.allowed_refs[0]: unknown prefix 'tags:' (use branch:, tag: or sha:)" in problems
    assert "environments.prod.allowed_refs[1]: branch: needs a pattern after it" in problems
    assert not any("allowed_refs[2]" in p for p in problems)
    assert any(p.startswith("environments.prod.tag_pattern: tag pattern") for p in problems), problems


def test_ssh_settings_and_what_would_stop_ssh_hosts_at_run_time() -> None:
    head = '[ssh]\nsudo_password_env = "DEPLOY_SUDO"\nkeepalive = "20s"\nkeepalive_count_max = 4\n'
    text = head + ENV.format(extra="").replace('backend = "local"', 'backend = "ssh"')
    config = parse_config(tomllib.loads(text), environ={})
    assert (config.ssh.sudo_password_env, config.ssh.keepalive, config.ssh.keepalive_count_max) == (
        "DEPLOY_SUDO",
        20.0,
        4,
    )
    assert config.warnings == (
        "ssh.identity_file: not set, so every host of prod will be refused (gonogo offers only its own "
        "key: no agent, no ~/.ssh keys)",
        "ssh.sudo_password_env: DEPLOY_SUDO is not set in the environment",
    )
    assert problems_of('[ssh]\nsudo_password_env = "not a name"\n' + ENV.format(extra="")) == [
        "ssh.sudo_password_env: must be an environment variable name (letters, digits and _)"
    ]
