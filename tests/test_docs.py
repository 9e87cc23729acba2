"""The docs say what the code does: commands, config keys, and the README's two commands."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from bot.cli import parser
from bot.config import KNOWN_KEYS, load_config
from commands.help import USAGE

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIG_DOC = (ROOT / "docs" / "CONFIG.md").read_text()


def _subcommands(p: argparse.ArgumentParser, prefix: str = "gonogo") -> list[str]:
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(f"{prefix} {name}")
                out.extend(_subcommands(sub, f"{prefix} {name}"))
    return out


def test_every_cli_command_is_in_the_readme() -> None:
    commands = _subcommands(parser())
    assert "gonogo config check" in commands and "gonogo audit export" in commands
    leaves = [c for c in commands if not any(o.startswith(c + " ") for o in commands)]
    missing = [c for c in leaves if c not in README]
    assert not missing, f"README does not mention: {missing}"


def test_every_chat_command_is_in_the_readme() -> None:
    for topic, usage in USAGE.items():
        head = usage.split()[:2] if usage.startswith("/deploy ") and topic != "deploy" else usage.split()[:1]
        assert " ".join(head) in README, f"README does not mention {' '.join(head)} ({topic})"


def test_every_config_key_is_documented() -> None:
    KNOWN_KEYS.clear()
    load_config(ROOT / "config.example.toml", environ={})  # fills KNOWN_KEYS as it reads
    documented = set(re.findall(r"`([a-z_<>\[\].]+)`", CONFIG_DOC))
    # a row may document siblings together: `hosts[].port` / `hosts[].user`
    documented |= {f"environments.<env>.{d}" for d in documented}
    documented |= {d.replace("environments.<env>.", "environments.<env>.approvals.") for d in documented}
    missing = sorted(k for k in KNOWN_KEYS if "." in k and k not in documented)
    assert not missing, f"docs/CONFIG.md does not document: {missing}"


def test_the_readme_commands_exist_and_ci_runs_the_test_command() -> None:
    run, test = re.findall(r"```sh\n(\S+)\n```", README)[:2]
    assert run == "./scripts/run.sh" and test == "./scripts/test.sh"
    for script in (run, test):
        assert os.access(ROOT / script, os.X_OK), script
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
