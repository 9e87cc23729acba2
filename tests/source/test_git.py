"""Git integrated into the deploy flow: real repositories, real engine, real SQLite."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.config import Config, parse_config
from bot.domain.deployment import State
from bot.engine.engine import Engine, Refused
from bot.source import GitResolver
from bot.store.sqlite import SqliteStore
from tests.support.gitfixtures import RemoteRepo, make_remote
from tests.support.recording import RecordingChat

CONFIG = """
[bot]
data_dir = "{data}"
[repo]
url = "{url}"
default_branch = "main"
push_remote = "{url}"
[environments.prod]
backend = "local"
hosts = ["h1"]
allowed_refs = ["main", "tag:v*"]
tag_pattern = "deploy/{{env}}/{{n}}"
max_commits = 3
break_glass = ["alice"]
[[environments.prod.steps.deploy]]
name = "record"
run = "echo {{sha}} >> {data}/deployed"
[[environments.prod.steps.rollback]]
name = "record"
run = "echo {{sha}} >> {data}/deployed"
"""


@pytest.fixture
def remote(tmp_path: Path) -> RemoteRepo:
    return make_remote(tmp_path / "repo")


@pytest.fixture
def config(tmp_path: Path, remote: RemoteRepo) -> Config:
    text = CONFIG.format(data=tmp_path / "data", url=remote.url)
    return parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})


@pytest.fixture
def engine(config: Config, tmp_path: Path, chat: RecordingChat) -> Engine:
    e = Engine(config, SqliteStore(tmp_path / "db"), chat, resolver=GitResolver(config))
    yield e
    e.shutdown()


def ship(engine: Engine, ref: str | None, **kw: object) -> int:
    d = engine.request_deploy("alice", "#d", "prod", ref, **kw)  # type: ignore[arg-type]
    engine.approve("bob", d.id)  # type: ignore[arg-type]
    engine.wait_idle(30)
    assert engine.deployment(d.id).state == State.SUCCEEDED  # type: ignore[arg-type]
    return d.id  # type: ignore[return-value]


def test_deploy_names_an_exact_commit_with_changelog_and_tag(
    engine: Engine, remote: RemoteRepo, chat: RecordingChat, tmp_path: Path
) -> None:
    first = ship(engine, None)  # default branch
    d1 = engine.deployment(first)
    assert d1.ref == "main" and d1.sha == remote.rev("main", in_origin=True)
    assert d1.committed_at is not None
    assert "First deploy of prod" in (chat.last_card(first).changelog_note or "")
    # after success a deploy tag exists in origin, pointing at the sha
    assert remote.rev(f"deploy/prod/{first}", in_origin=True) == d1.sha
    assert any(f"deploy/prod/{first}" in m.text for m in chat.of_kind("thread"))

    shas = [remote.commit(f"feature {i}") for i in range(5)]
    remote.push()
    remote.tag("v1.0", annotated=True)
    remote.push_tags()
    d2 = engine.request_deploy("alice", "#d", "prod", "v1.0")
    assert d2.sha == shas[-1]
    card = chat.last_card(d2.id)  # type: ignore[arg-type]
    assert len(card.changelog) == 5 and "feature 4" in card.changelog[0]
    assert any("5 commits" in w and "more than 3" in w for w in card.warnings), card.warnings
    assert (tmp_path / "data" / "deployed").read_text().split() == [d1.sha]


def test_refs_outside_the_rules_are_refused_with_the_rule(engine: Engine, remote: RemoteRepo) -> None:
    remote.checkout("feature/x", new=True)
    remote.commit("wip")
    remote.push("feature/x")
    with pytest.raises(Refused, match=r"not allowed in prod.*main, tag:v\*"):
        engine.request_deploy("alice", "#d", "prod", "feature/x")
    with pytest.raises(Refused, match="did you mean 'main'"):
        engine.request_deploy("alice", "#d", "prod", "mian")
    with pytest.raises(Refused):
        engine.request_deploy("alice", "#d", "prod", "main;id")
    assert engine.store.deployments("prod") == []


def test_going_backwards_is_a_rollback(engine: Engine, remote: RemoteRepo) -> None:
    old = remote.rev("main")
    remote.tag("v0.9")
    remote.push_tags()
    remote.commit("newer")
    remote.push()
    ship(engine, "main")
    with pytest.raises(Refused, match="behind what prod runs now: that is a rollback"):
        engine.request_deploy("alice", "#d", "prod", "v0.9")
    forced = engine.request_deploy("alice", "#d", "prod", "v0.9", force=True)
    assert forced.sha == old and forced.required_approvals == 2  # --force asks for one more approval


def test_unreachable_repository_falls_back_to_the_mirror(
    engine: Engine, remote: RemoteRepo, chat: RecordingChat
) -> None:
    ship(engine, "main")
    remote.origin.rename(remote.origin.with_name("gone.git"))
    d = engine.request_deploy("alice", "#d", "prod", "main")
    assert any("could not fetch the repository" in w for w in chat.last_card(d.id).warnings)  # type: ignore[arg-type]


def resolver_engine(tmp_path: Path, remote: RemoteRepo, chat: RecordingChat, env_extra: str) -> Engine:
    """An engine on `remote` whose prod environment has `env_extra` keys and no push remote."""
    text = (
        CONFIG.format(data=tmp_path / "data", url=remote.url)
        .replace(f'push_remote = "{remote.url}"\n', "")
        .replace('allowed_refs = ["main", "tag:v*"]\n', env_extra)
    )
    config = parse_config(tomllib.loads(text), source=tmp_path / "c.toml", environ={})
    assert config.repo.push_remote is None
    return Engine(config, SqliteStore(tmp_path / "db2"), chat, resolver=GitResolver(config))


def test_deploy_tags_without_a_push_remote_stay_in_the_mirror(
    tmp_path: Path, remote: RemoteRepo, chat: RecordingChat
) -> None:
    engine = resolver_engine(tmp_path, remote, chat, "")
    try:
        first = ship(engine, "main")
        assert any("in the mirror (no push remote configured)" in m.text for m in chat.of_kind("thread"))
        remote.commit("next")
        remote.push()
        second = ship(engine, "main")  # fetches again: the first tag must survive it
        engine.request_deploy("alice", "#d", "prod", "main", dry_run=True)  # and one more fetch
        engine.wait_idle(30)
        resolver = engine.resolver
        assert isinstance(resolver, GitResolver)
        mirror = resolver.mirror
        assert mirror.resolve(f"deploy/prod/{first}", "main").sha == engine.deployment(first).sha
        assert mirror.resolve(f"deploy/prod/{second}", "main").sha == engine.deployment(second).sha
        with pytest.raises(RuntimeError):
            remote.rev(f"deploy/prod/{first}", in_origin=True)  # really never pushed
    finally:
        engine.shutdown()


def test_the_branch_warning_uses_the_environments_branch_rules(
    tmp_path: Path, remote: RemoteRepo, chat: RecordingChat
) -> None:
    # release/1.x carries a hotfix tag; main has moved on with a tag of its own
    remote.checkout("release/1.x", new=True)
    remote.commit("hotfix")
    remote.tag("v1.0.1")
    remote.push("release/1.x")
    remote.checkout("main")
    remote.commit("feature")
    remote.tag("v2.0")
    remote.push()
    remote.push_tags()
    engine = resolver_engine(tmp_path, remote, chat, 'allowed_refs = ["branch:release/*", "tag:v*"]\n')
    try:
        on_release = engine.request_deploy("alice", "#d", "prod", "v1.0.1")
        warnings = chat.last_card(on_release.id).warnings  # type: ignore[arg-type]
        assert not any("not on" in w for w in warnings), warnings  # [repo] default_branch is main
        engine.cancel("alice", on_release.id)  # type: ignore[arg-type]
        on_main = engine.request_deploy("alice", "#d", "prod", "v2.0")
        warnings = chat.last_card(on_main.id).warnings  # type: ignore[arg-type]
        assert "target commit is not on an allowed branch (release/*)" in warnings
    finally:
        engine.shutdown()


def test_without_branch_rules_the_default_ref_is_the_branch(
    tmp_path: Path, remote: RemoteRepo, chat: RecordingChat
) -> None:
    remote.checkout("stable", new=True)
    remote.commit("stable fix")
    remote.push("stable")
    remote.checkout("main")
    remote.commit("only on main")
    remote.tag("v3")
    remote.push()
    remote.push_tags()
    engine = resolver_engine(tmp_path, remote, chat, 'default_ref = "stable"\n')
    try:
        d = engine.request_deploy("alice", "#d", "prod", None)
        assert d.ref == "stable"
        assert not any("not on" in w for w in chat.last_card(d.id).warnings)  # type: ignore[arg-type]
        engine.cancel("alice", d.id)  # type: ignore[arg-type]
        tagged = engine.request_deploy("alice", "#d", "prod", "v3")
        assert "target commit is not on 'stable'" in chat.last_card(tagged.id).warnings  # type: ignore[arg-type]
    finally:
        engine.shutdown()


def test_prefixed_patterns_keep_a_v_branch_out_of_prod(
    tmp_path: Path, remote: RemoteRepo, chat: RecordingChat
) -> None:
    for branch in ("v-experimental", "feature/x"):
        remote.checkout(branch, new=True, start="main")
        remote.commit(f"try {branch}")
        remote.push(branch)
    remote.checkout("main")
    remote.tag("v1.0")
    remote.push_tags()
    engine = resolver_engine(tmp_path, remote, chat, 'allowed_refs = ["branch:main", "tag:v*"]\n')
    try:
        with pytest.raises(
            Refused, match=r"branch 'v-experimental' is not allowed in prod \(allowed: branch:main, tag:v\*\)"
        ):
            engine.request_deploy("alice", "#d", "prod", "v-experimental")
        assert engine.request_deploy("alice", "#d", "prod", "v1.0").ref == "v1.0"
    finally:
        engine.shutdown()
    # the unprefixed form the example config had lets it in, and the refusal says why
    loose = resolver_engine(tmp_path / "loose", remote, chat, 'allowed_refs = ["main", "v*"]\n')
    try:
        assert loose.request_deploy("alice", "#d", "prod", "v-experimental").ref == "v-experimental"
        loose.cancel("alice", 1)
        with pytest.raises(Refused, match="a pattern without branch:, tag: or sha: matches every kind"):
            loose.request_deploy("alice", "#d", "prod", "feature/x")
    finally:
        loose.shutdown()
