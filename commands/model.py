"""Typed commands: what a line of chat text means once parsed.

The parser (`commands.parser.parse`) turns text into exactly one of these; the handlers
(`commands.handlers`) turn them into engine calls. None of them carries raw shell text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deploy:
    """`/deploy <env> [ref] [--reason TEXT] [--dry-run] [--force] [--at TIME]`."""

    env: str
    ref: str | None = None
    reason: str | None = None
    dry_run: bool = False
    force: bool = False
    at: str | None = None


@dataclass(frozen=True)
class Lock:
    """`/deploy lock <env> [reason...]`."""

    env: str
    reason: str | None = None


@dataclass(frozen=True)
class Unlock:
    """`/deploy unlock <env> [reason...]`."""

    env: str
    reason: str | None = None


@dataclass(frozen=True)
class History:
    """`/deploy history <env> [--limit N]`."""

    env: str
    limit: int = 10


@dataclass(frozen=True)
class Abort:
    """`/deploy abort <env>`."""

    env: str


@dataclass(frozen=True)
class Cancel:
    """`/deploy cancel <deploy-id>`: cancel a pending or scheduled deployment."""

    deploy_id: int


@dataclass(frozen=True)
class Stats:
    """`/deploy stats <env> [--days N]`."""

    env: str
    days: int = 30


@dataclass(frozen=True)
class Help:
    """`/deploy help [topic]`, `/rollback help`, ...; topic is a command word or None."""

    topic: str | None = None


@dataclass(frozen=True)
class Rollback:
    """`/rollback <env> [to <deploy-id|ref>] [--reason TEXT]`.

    `target_id` is set when the target is `#42` or `42`; `target_ref` when it is a ref.
    """

    env: str
    target_id: int | None = None
    target_ref: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Status:
    """`/status [env]`."""

    env: str | None = None


@dataclass(frozen=True)
class Signoff:
    """`/signoff <env>`."""

    env: str


@dataclass(frozen=True)
class ParseError:
    """Text that is not a valid command: a short specific message and the usage line."""

    message: str
    usage: str


Command = Deploy | Lock | Unlock | History | Abort | Cancel | Stats | Help | Rollback | Status | Signoff
