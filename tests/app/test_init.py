"""`gonogo init`: a commented starting config that passes `config check` and really deploys.

The CLI runs in a subprocess (flags, or answers on stdin); the deploy test points the written
config at local sshd hosts (tests/support/sshd.py) through an ssh_config whose Host entries
the flags pick with a glob, and deploys the demo's git history through the terminal chat.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import load_config
from demo.history import ensure_demo_repo
from tests.support.healthapp import HealthApp
from tests.support.sshd import SSHFleet

pytest_plugins = ["tests.support.sshd"]

FLAGS = [
    "--yes", "--repo", "git@github.com:acme/shop.git", "--env", "staging", "--env", "prod",
    "--hosts", "staging=stage1", "--hosts", "prod=web1,web2,web3=10.0.0.3:2222",
    "--approvers", "prod=U0ALICE,U0BOB,U0CAROL", "--health-url", "prod=https://shop.example/health?deep=1",
]  # fmt: skip


def gonogo(
    *args: str, cwd: Path, stdin: str = "", home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home or cwd)}
    return subprocess.run(
        [sys.executable, "-m", "bot.app.cli", *args], input=stdin, capture_output=True, text=True,
        timeout=120, cwd=cwd, env=env,
    )  # fmt: skip


def test_flags_write_a_config_that_passes_config_check(tmp_path: Path) -> None:
    proc = gonogo("init", "shop.toml", *FLAGS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Wrote shop.toml (2 environment(s): staging, prod)" in proc.stdout
    assert "gonogo doctor --config shop.toml" in proc.stdout
    check = gonogo("config", "check", "shop.toml", cwd=tmp_path)
    assert check.returncode == 0 and "OK (2 environment(s): staging, prod)" in check.stdout, check.stdout
    config = load_config(tmp_path / "shop.toml", environ={})
    prod, staging = config.environments["prod"], config.environments["staging"]
    assert [(h.name, h.address, h.port) for h in prod.hosts] == [
        ("web1", "web1", None), ("web2", "web2", None), ("web3", "10.0.0.3", 2222),
    ]  # fmt: skip
    assert prod.approvals.required == 2 and prod.approvals.approvers == ("U0ALICE", "U0BOB", "U0CAROL")
    assert staging.approvals.required == 1 and staging.approvals.approvers == ()
    assert prod.strategy.kind == "canary" and staging.strategy.kind == "parallel"
    assert [c.name for c in prod.smoke()] == ["health"] and not staging.checks
    assert [s.name for s in prod.stage("deploy")] == ["fetch release", "switch current", "prune releases"]
    assert [s.name for s in prod.stage("rollback")] == ["switch current back"]
    assert config.repo.url == "git@github.com:acme/shop.git" and prod.deploy_to == "/srv/shop"
    text = (tmp_path / "shop.toml").read_text()
    assert "# Make one with: ssh-keygen -t ed25519" in text  # commented, saying how to go on
    assert "# restart" not in text and '# name = "restart"' in text


def test_in_place_style_and_a_restart_command(tmp_path: Path) -> None:
    proc = gonogo(
        "init", *FLAGS, "--style", "in-place", "--restart", "sudo systemctl restart shop",
        "--deploy-to", "/srv/{env}/app", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    prod = load_config(tmp_path / "gonogo.toml", environ={}).environments["prod"]
    assert [s.name for s in prod.stage("deploy")] == ["update code", "restart"]
    assert [s.name for s in prod.stage("rollback")] == ["check out the earlier release", "restart"]
    assert (
        prod.deploy_to == "/srv/{env}/app"
        and "\nkeep_releases = 5" not in (tmp_path / "gonogo.toml").read_text()
    )


def test_an_existing_file_is_kept_unless_force(tmp_path: Path) -> None:
    (tmp_path / "gonogo.toml").write_text("# mine\n")
    kept = gonogo("init", *FLAGS, cwd=tmp_path)
    assert kept.returncode == 2
    assert kept.stderr == "gonogo init: gonogo.toml exists; keeping it (--force overwrites)\n"
    assert (tmp_path / "gonogo.toml").read_text() == "# mine\n"
    forced = gonogo("init", *FLAGS, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "[environments.prod]" in (tmp_path / "gonogo.toml").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--yes", "--hosts", "web1"], "Repository to deploy (git URL or path): no default with --yes; give --repo"),
        (["--yes", "--repo", "r.git"], "Hosts of prod: no default with --yes; give --hosts prod=…"),
        (["--yes", "--repo", "r.git", "--env", "Prod!", "--hosts", "a"], "environment 'Prod!': lowercase letters"),
        (["--yes", "--repo", "r.git", "--hosts", "web*"], "hosts of prod: no Host entry of"),
        (["--yes", "--repo", "r.git", "--hosts", "a", "--approvers", "qa=U1"], "--approvers qa=U1: no environment 'qa' (environments: prod)"),
        (["--yes", "--repo", "r.git", "--hosts", "a", "--health-url", "ftp://x"], "health URL 'ftp://x': an http:// or https:// URL"),
        (["--yes", "--repo", "r.git", "--hosts", "a b"], "hosts of prod: 'a b' is not a host name"),
        (["--yes", "--repo", "r.git", "--hosts", "a,a"], "hosts of prod: a is listed twice"),
        (["--yes", "--repo", "r.git", "--hosts", "a", "--deploy-to", "srv"], "deploy path 'srv': an absolute path"),
        (["--yes", "--repo", "r.git", "--hosts", "a", "--restart", "echo '{env}'"], "the config would not load, nothing written: environments.prod.steps.deploy[2].run: {env} is inside"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_nothing_is_written(
    tmp_path: Path, args: list[str], says: str
) -> None:
    proc = gonogo("init", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("gonogo init: ") and says in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "gonogo.toml").exists()


def test_it_asks_and_asks_again_after_a_bad_answer(tmp_path: Path) -> None:
    answers = "\n".join([
        "git@github.com:acme/shop.git", "", "staging,prod",  # repo, branch (default), environments
        "stage1", "", "",  # staging: hosts, approvers, health URL
        "", "web1,web2", "U0ALICE", "not a url", "https://shop.example/health",  # prod: asked again twice
        "in-place", "", "", "/srv/shop", "",  # style, user, key, where, channel
    ]) + "\n"  # fmt: skip
    proc = gonogo("init", stdin=answers, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "Default branch [main]: " in proc.stdout and "Environments (comma-separated) [prod]: " in proc.stdout
    )
    assert "  hosts of prod: at least one host (comma-separated)" in proc.stdout
    assert "  health URL 'not a url': an http:// or https:// URL" in proc.stdout
    raw = tomllib.loads((tmp_path / "gonogo.toml").read_text())
    assert raw["environments"]["prod"]["hosts"] == ["web1", "web2"]
    assert raw["environments"]["prod"]["approvals"] == {
        "required": 1,
        "approvers": ["U0ALICE"],
        "rollback_required": 1,
    }
    assert raw["ssh"]["user"] == "deploy" and raw["repo"]["default_branch"] == "main"
    ended = gonogo("init", "other.toml", stdin="git@github.com:acme/shop.git\n", cwd=tmp_path)
    assert ended.returncode == 2
    assert (
        "gonogo init: Default branch: no answer (input ended); pass --yes to take the defaults"
        in ended.stderr
    )


def ssh_config_for(fleet: SSHFleet, path: Path) -> Path:
    entries = "".join(
        f"Host app{i + 1}\n  HostName 127.0.0.1\n  Port {server.port}\n  User {fleet.user}\n  IdentityFile {fleet.key}\n"
        for i, server in enumerate(fleet.servers)
    )
    path.write_text(entries + "Host *\n  ServerAliveInterval 30\n")
    return path


def test_hosts_from_the_ssh_config_by_glob(tmp_path: Path) -> None:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        "Host web1 web2 web10\n  HostName 10.0.0.%h\n  User shop\n  IdentityFile ~/.ssh/shop_deploy\n"
        "Host db1\n  User postgres\nHost *.internal !bastion\n  ProxyJump bastion\n"
    )
    proc = gonogo(
        "init",
        "--yes",
        "--repo",
        "r.git",
        "--hosts",
        "web*,db1",
        "--ssh-config",
        str(ssh_config),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    raw = tomllib.loads((tmp_path / "gonogo.toml").read_text())
    assert raw["environments"]["prod"]["hosts"] == ["web1", "web2", "web10", "db1"]  # natural order
    assert raw["ssh"]["ssh_config"] == str(ssh_config)
    assert raw["ssh"]["user"] == "deploy"  # the entries disagree (shop, postgres): the default
    webs = gonogo(
        "init",
        "w.toml",
        "--yes",
        "--repo",
        "r.git",
        "--hosts",
        "web?",
        "--ssh-config",
        str(ssh_config),
        cwd=tmp_path,
    )
    assert webs.returncode == 0, webs.stderr
    raw = tomllib.loads((tmp_path / "w.toml").read_text())
    assert raw["ssh"]["user"] == "shop" and raw["ssh"]["identity_file"].endswith("/.ssh/shop_deploy")
    none = gonogo(
        "init",
        "x.toml",
        "--yes",
        "--repo",
        "r.git",
        "--hosts",
        "app*",
        "--ssh-config",
        str(ssh_config),
        cwd=tmp_path,
    )
    assert f"no Host entry of {ssh_config} matches 'app*' (entries: db1, web1, web2, web10)" in none.stderr


@pytest.mark.ssh
def test_the_written_config_deploys_to_sshd_hosts(tmp_path: Path, sshd_hosts) -> None:  # type: ignore[no-untyped-def]
    fleet = sshd_hosts(2)
    repo = tmp_path / "shop.git"
    ensure_demo_repo(repo)
    ssh_config = ssh_config_for(fleet, tmp_path / "ssh_config")
    srv = tmp_path / "srv"
    with HealthApp() as app:
        app.set_body({"status": "ok"})
        proc = gonogo(
            "init", "--yes", "--repo", str(repo), "--env", "staging", "--env", "prod",
            # one host each: the "hosts" share this machine's disk, so two would race on deploy_to
            "--hosts", "staging=app1", "--hosts", "prod=app2", "--ssh-config", str(ssh_config),
            "--known-hosts", str(fleet.known_hosts), "--deploy-to", f"{srv}/{{env}}",
            "--approvers", "prod=bob", "--health-url", f"prod={app.health_url}", cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        config = load_config(tmp_path / "gonogo.toml", environ={})
        assert config.ssh.user == fleet.user and config.ssh.identity_file == str(
            fleet.key
        )  # from the entries
        assert config.ssh.ssh_config == str(ssh_config)
        assert [h.name for h in config.environments["prod"].hosts] == ["app2"]
        script = (
            "/deploy staging v1\n/as bob\npress go\nwait\n"
            "/as alice\n/deploy prod v3\n/as bob\ntick all\npress go\nwait\n/status\n"
        )
        console = gonogo("console", "--config", str(tmp_path / "gonogo.toml"), stdin=script, cwd=tmp_path)
    out = console.stdout
    assert console.returncode == 0, out + console.stderr
    assert "✓ deploy › fetch release: app1: ok" in out, out
    assert "✓ deploy › switch current: app1: ok" in out and "✓ deploy › switch current: app2: ok" in out
    assert "*prod*: v3 (06283ec)" in out and "*staging*: v1 (9a647f9)" in out, out
    # the hosts really have the releases: current -> releases/<id>, the commit's files in it
    staging_current = srv / "staging" / "current"
    assert staging_current.resolve() == (srv / "staging" / "releases" / "1").resolve()
    assert (staging_current / "CHANGES.md").read_text().splitlines()[
        -1
    ] == "- Serve /health with the running version (v1)"
    assert (srv / "prod" / "current" / "CHANGES.md").read_text().splitlines()[-1].endswith("(v3)")
    assert (srv / "prod" / "repo").is_dir()  # the hosts' own mirror, fetched on each deploy
