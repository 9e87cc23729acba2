"""Help text for the chat commands: one-line usages, per-topic help and the command list.

`USAGE` is what `commands.parser.parse` puts in `ParseError.usage`; `help_text` renders the
answer to a `Help` command; `COMMANDS`, `COMMAND_DESCRIPTIONS` and `COMMAND_USAGE_HINTS`
describe the slash commands for the Slack app manifest.
"""

from __future__ import annotations

from commands.tokens import show

COMMANDS: tuple[str, ...] = ("/deploy", "/rollback", "/status", "/signoff")

COMMAND_DESCRIPTIONS: dict[str, str] = {
    "/deploy": "Deploy a ref to an environment; also lock, unlock, history, abort, cancel, stats, help",
    "/rollback": "Roll an environment back to its previous good release (or a given deployment or ref)",
    "/status": "What runs where and since when, what is in flight, locks and the last check results",
    "/signoff": "Post the sign-off checklist (Keep / Roll back) for what an environment runs now",
}

COMMAND_USAGE_HINTS: dict[str, str] = {
    "/deploy": "<env> [ref] [--reason TEXT] [--dry-run] [--force] [--at TIME] | help",
    "/rollback": "<env> [to <#id|ref>] [--reason TEXT]",
    "/status": "[env]",
    "/signoff": "<env>",
}

USAGE: dict[str, str] = {
    "deploy": "/deploy <env> [ref] [--reason TEXT] [--dry-run|-n] [--force] [--at HH:MM|YYYY-MM-DDTHH:MM]",
    "lock": "/deploy lock <env> [reason...]",
    "unlock": "/deploy unlock <env> [reason...]",
    "history": "/deploy history <env> [--limit N]",
    "abort": "/deploy abort <env>",
    "cancel": "/deploy cancel <id>",
    "stats": "/deploy stats <env> [--days N]",
    "help": "/deploy help [topic]",
    "rollback": "/rollback <env> [to <#id|ref>] [--reason TEXT]",
    "status": "/status [env]",
    "signoff": "/signoff <env>",
}

GENERAL_USAGE = (
    "/deploy <env> [ref] [options] | /rollback <env> | /status [env] | /signoff <env> (try /deploy help)"
)

_DESCRIPTIONS: dict[str, str] = {
    "deploy": (
        "Deploy `ref` (branch, tag or sha; default: the environment's default branch) to `env`: "
        "posts a card with the changelog, the checklist and Go / No-go.\n"
        "`--reason` takes the words up to the next option (quotes work). `--dry-run`/`-n` prints "
        "the exact commands per host without running them (no approval needed). `--force` "
        "(break-glass users only) deploys outside the deploy window or behind what runs, asks for "
        "one more approval and is recorded. `--at` schedules the start (HH:MM in the environment's "
        "time zone, or an ISO date-time, at most 30 days ahead)."
    ),
    "lock": "Lock `env` so nobody can deploy to it until it is unlocked; the reason is shown to others.",
    "unlock": (
        "Remove the lock from `env`. A lock gonogo set itself (after an automatic rollback) needs a reason."
    ),
    "history": (
        "List the last N deployments to `env`, newest first, with who approved them; dry runs "
        "are marked (N from 1 to 100, default 10)."
    ),
    "abort": (
        "Stop what is in flight in `env`: a running deploy stops after its current batch (hosts "
        "already done stay done) and you are offered a rollback; a pending or scheduled one is "
        "cancelled; a monitoring window is stopped."
    ),
    "cancel": "Cancel a pending or scheduled deployment by its id (its requester, or an operator).",
    "stats": (
        "The four DORA figures for `env` from gonogo's own records (deploy frequency, lead time, "
        "change failure rate, time to restore) over the last N days (1 to 365, default 30)."
    ),
    "help": "Show help: an overview, or details on one topic.",
    "rollback": (
        "Roll `env` back to the previous good release, taken from gonogo's history (never guessed "
        "from git), or to an earlier deployment given by id or ref. It posts a card needing the "
        "environment's rollback approvals (often one).\n"
        "`--reason` takes the words up to the next option."
    ),
    "status": (
        "Every environment at a glance: what runs (ref, commit, who, since when), what is in "
        "flight, locks and the last check results. `/status <env>` adds the monitoring state and "
        "the recent deployments."
    ),
    "signoff": (
        "Post the sign-off checklist for the release `env` runs now, with Keep / Roll back "
        "buttons. Keep (every item ticked) closes the deploy as signed off; Roll back undoes it. "
        "The decision is recorded."
    ),
}

_EXAMPLES: dict[str, tuple[str, ...]] = {
    "deploy": (
        "/deploy staging",
        '/deploy prod v1.4.2 --reason "hotfix for login" --at 22:00',
        "/deploy prod main -n",
    ),
    "lock": ("/deploy lock prod release freeze until Monday",),
    "unlock": ("/deploy unlock prod freeze over",),
    "history": ("/deploy history prod --limit 20",),
    "abort": ("/deploy abort prod",),
    "cancel": ("/deploy cancel #42",),
    "stats": ("/deploy stats prod --days 90",),
    "help": ("/deploy help", "/deploy help rollback"),
    "rollback": (
        "/rollback prod",
        "/rollback prod to #41 --reason error rate up",
        "/rollback prod to v1.4.1",
    ),
    "status": ("/status", "/status prod"),
    "signoff": ("/signoff prod",),
}

_OVERVIEW_ORDER: tuple[str, ...] = (
    "deploy",
    "rollback",
    "status",
    "signoff",
    "lock",
    "unlock",
    "history",
    "abort",
    "cancel",
    "stats",
    "help",
)


def topics() -> tuple[str, ...]:
    """Return the help topics in display order."""
    return _OVERVIEW_ORDER


def normalize_topic(topic: str) -> str:
    """Normalise a topic as typed (`/Rollback`, ` lock `) to its key form (`rollback`, `lock`)."""
    return topic.strip().lower().lstrip("/")


def help_text(topic: str | None) -> str:
    """Return compact multi-line help: an overview when `topic` is None, else help on one topic.

    Unknown topics get a short note listing the known topics instead of raising.
    """
    if topic is None or not topic.strip():
        lines = ["*gonogo* — deploys from Slack. Commands:"]
        lines.extend(f"• `{USAGE[name]}`" for name in _OVERVIEW_ORDER)
        lines.append("Details: `/deploy help <topic>`, e.g. `/deploy help rollback`.")
        return "\n".join(lines)
    key = normalize_topic(topic)
    if key not in USAGE:
        return f"No help for {show(topic)}. Topics: {', '.join(_OVERVIEW_ORDER)}."
    lines = [f"`{USAGE[key]}`", _DESCRIPTIONS[key]]
    examples = _EXAMPLES.get(key, ())
    if examples:
        lines.append("Example" + ("s" if len(examples) > 1 else "") + ":")
        lines.extend(f"• `{example}`" for example in examples)
    return "\n".join(lines)
