"""The docs say what the code does: commands, options, config keys, links, the README's two commands.

Both directions: every CLI subcommand and option is documented (README, or a docs page it
links), and every `gonogo …` command line, `--option` and relative link the docs show exists.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from bot.app.cli import parser
from bot.config import KNOWN_KEYS, load_config
from commands.help import USAGE

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIG_DOC = (ROOT / "docs" / "CONFIG.md").read_text()
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _linked_pages(path: Path, text: str) -> list[Path]:
    """The markdown files `text` (of `path`) links to with relative links."""
    pages = []
    for target in _LINK.findall(text):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        page = (path.parent / target.split("#", 1)[0]).resolve()
        if page.suffix == ".md" and page.is_file():
            pages.append(page)
    return pages


DOCS: dict[Path, str] = {ROOT / "README.md": README}
DOCS.update({page: page.read_text() for page in _linked_pages(ROOT / "README.md", README)})


def _code(text: str) -> list[str]:
    """The code in markdown `text`: each line of a fenced block, each inline `span` (one per line)."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            out.append(line)
        else:
            out.extend(re.findall(r"`([^`]+)`", line))
    return out


def _lines(texts: dict[Path, str]) -> list[str]:
    return [line for text in texts.values() for line in text.splitlines()]


def _parsers(
    p: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every parser of the CLI by its subcommand path (`()` is `gonogo` itself)."""
    out = {path: p}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(_parsers(sub, (*path, name)))
    return out


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings if o not in ("-h", "--help")}


def _chat_options() -> set[str]:
    return {o for usage in USAGE.values() for o in re.findall(r"--[a-z][a-z-]*", usage)}


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


def test_every_cli_option_is_documented_with_its_command() -> None:
    parsers = _parsers(parser())
    common = _options(parsers[()])
    lines = _lines(DOCS)
    text = "\n".join(lines)
    missing = sorted(o for o in common if o not in text)
    for path, p in parsers.items():
        if not path or any(len(other) > len(path) and other[: len(path)] == path for other in parsers):
            continue  # gonogo itself, or a group like `gonogo config`
        command = "gonogo " + " ".join(path)
        rows = [line for line in lines if command in line]
        assert rows, f"the docs never mention {command}"
        for option in sorted(_options(p) - common):
            if not any(re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", row) for row in rows):
                missing.append(f"{command} {option}")
        positionals = [
            a.dest.upper()
            for a in p._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
        ]
        missing.extend(f"{command} {name}" for name in positionals if not any(name in row for row in rows))
    assert not missing, f"not documented next to their command: {missing}"


def test_every_command_line_and_option_in_the_docs_exists() -> None:
    parsers = _parsers(parser())
    every_cli_option = set().union(*(_options(p) for p in parsers.values()))
    chat = _chat_options()
    wrong = []
    for path, text in DOCS.items():
        for code in _code(text):
            for m in re.finditer(
                r"(?<![\w/.:-])(?:\S*/)?gonogo((?: [a-z][a-z-]*)*)(?P<rest>[^|;&<>]*)", code
            ):
                words = m.group(1).split()
                sub: tuple[str, ...] = ()
                for word in words:
                    if (*sub, word) in parsers:
                        sub = (*sub, word)
                    else:
                        break
                groups = [q for q in parsers if len(q) == len(sub) + 1 and q[: len(sub)] == sub]
                if (words and not sub) or (groups and sub and len(words) > len(sub)):
                    wrong.append(f"{path.name}: `{code}`: no such command")
                    continue
                allowed = _options(parsers[sub]) | _options(parsers[()])
                for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", code[m.start() :]):
                    if option not in allowed:
                        wrong.append(f"{path.name}: `{code}`: gonogo {' '.join(sub)} has no {option}")
            for m in re.finditer(r"(?<![\w.])/(deploy|rollback|status|signoff)\b(.*)", code):
                for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", m.group(2)):
                    if option not in chat:
                        wrong.append(f"{path.name}: `{code}`: no chat option {option}")
            if path.name == "README.md" and re.match(r"gonogo .*[<|>]", code):
                wrong.append(
                    f"{path.name}: `{code}`: gonogo is not on PATH after ./scripts/run.sh: .venv/bin/gonogo"
                )
            if code.startswith("--"):
                option = code.split()[0]
                if option not in every_cli_option | chat:
                    wrong.append(f"{path.name}: `{code}`: no such option")
    assert not wrong, "\n".join(wrong)


def test_every_relative_link_in_the_readme_and_docs_exists() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in _LINK.findall(page.read_text()):
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            if not (page.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, f"broken links: {broken}"


def test_the_readme_documents_the_environment_the_cli_reads() -> None:
    sources = ("bot/app/cli.py", "bot/config/service.py", "bot/app/serve.py", "bot/ops/logs.py")
    names = set()
    for source in sources:
        names |= set(re.findall(r"environ(?:\.get\(|\[)\"([A-Z][A-Z0-9_]+)\"", (ROOT / source).read_text()))
    assert {"GONOGO_SHUTDOWN_GRACE", "GONOGO_CONFIG", "SLACK_BOT_TOKEN"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in README and f"`{n}`," not in README)
    assert not missing, f"README does not document: {missing}"


#: Card states a run passes through; which of them a transcript catches is a matter of timing.
TRANSIENT = ("approved, starting", "🚀 running", "rolling back")


def test_the_readme_transcript_is_the_real_session() -> None:
    """The README's transcript is what `demo/session.txt` really prints (times aside)."""
    from demo.transcript import END, START, run_session

    shown = README.split(START, 1)[1].split(END, 1)[0]
    shown = shown.split("```text\n", 1)[1].rsplit("```", 1)[0]
    script = [
        line
        for line in (ROOT / "demo" / "session.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    typed = [line.split("> ", 1)[1] for line in shown.splitlines() if re.match(r"^[a-z]+> ", line)]
    assert typed == script, "the transcript is not the output of demo/session.txt: regenerate it"
    assert "Refused: demo has no earlier successful release to roll back to" in shown
    assert "Rollback #3: v1 to demo" in shown and "History of demo" in shown

    def normal(text: str) -> list[str]:
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", text)
        text = re.sub(r"\d+(\.\d+)?(s| ms)\b", "<t>", text)
        # A card caught while its run starts (approved / running) depends on which thread
        # refreshed it first: compare everything but those passing states.
        lines, out, block = text.splitlines(), [], []
        for line in lines:
            if block or line.startswith("┌─"):
                block.append(line)
                if line.startswith("└─"):
                    if not any(t in block[1] for t in TRANSIENT):
                        out.extend(block)
                    block = []
                continue
            out.append(line)
        return out + block

    assert normal(run_session()) == normal(shown), "the transcript differs from a real run: regenerate it"
