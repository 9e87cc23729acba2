"""`gonogo console`: talk to the bot in a terminal, interactively or from a script on stdin.

The console's own words (kept stable, scripts rely on them):
  /as <user>             switch the acting user
  /deploy ...            any slash command, typed as in Slack
  tick <n>|all [#id]     tick checklist items on the latest card with an open checklist
  press <label|n> [#id]  press a button on the latest card that has buttons (exact label beats
                         a partial one); `#id` names the deployment whose card to act on
  wait                   block until nothing runs, is queued or is in its monitoring window
  wait runs              block until no deployment runs or is queued (monitoring goes on)
  help, /help [topic]    the console's words and the chat commands' help
  quit                   exit
In script mode a refused line is printed with its reason and the script goes on.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from bot.console.chat import ConsoleChat
from bot.domain.actions import Action
from bot.domain.card import Button, Card
from bot.domain.states import State
from bot.engine import Engine
from commands.handlers import Context, Reply, handle_action, handle_text
from commands.help import help_text

PROMPT_HELP = (
    "Type help, or: /as <user>, tick <n|all> [#id], press <button> [#id], wait, quit "
    "(tick and press act on the latest card with a checklist or buttons; #id names the deployment)"
)
CONSOLE_HELP = """\
The terminal chat's own words:
  /as <user>                       switch who you are
  tick <n> [n…] [#id], tick all    tick checklist items on the latest card with an open checklist
  press <button or n> [#id]        press a button on the latest card that has buttons
  wait                             block until nothing runs, is queued or is in its monitoring window
  wait runs                        block until no deployment runs or is queued (monitoring goes on)
  help, /help [topic]              this help; with a topic, the help of that chat command
  quit                             exit (the demo app stops too, unless started with --keep-running)
#id names the deployment: press go #1, tick all #1.
Slash commands work as in Slack:"""
#: States `wait` waits out: queued or running work, and an open monitoring window.
_BUSY = (State.APPROVED, State.RUNNING)
_WATCHING = (State.MONITORING,)
#: How long `wait` may outlast the longest open monitoring window (a window whose scheduler
#: does not run would otherwise keep it waiting forever).
WAIT_SLACK = 600.0

_NUMBER = re.compile(r"[0-9]{1,9}")
"""A number as people type it: ASCII digits only (`²` and `٣` are not numbers here)."""
_TARGET = re.compile(r"(?:^|\s)#([0-9]{1,9})$")
"""A trailing `#12` naming the deployment a `tick` or `press` acts on."""


@dataclass(frozen=True)
class Target:
    """What a `press` or `tick` acts on: the buttons (and card, when it is one) of one message."""

    buttons: tuple[Button, ...]
    card: Card | None


def split_target(arg: str) -> tuple[str, int | None]:
    """Split `go #12` into (`go`, 12); `go` gives (`go`, None)."""
    m = _TARGET.search(arg)
    if m is None:
        return arg, None
    return arg[: m.start()].strip(), int(m.group(1))


class Console:
    """The read-eval-print loop over a ConsoleChat and an Engine."""

    def __init__(
        self, engine: Engine, chat: ConsoleChat, *, user: str = "alice", channel: str = "#deploys"
    ) -> None:
        self.engine = engine
        self.chat = chat
        self.user = user
        self.channel = channel
        self.interactive = False

    def run(self, stream: TextIO, *, interactive: bool) -> int:
        """Read lines until EOF or `quit`; returns the exit status."""
        self.interactive = interactive
        if interactive:
            self.chat.say(f"gonogo console: you are {self.user}. {PROMPT_HELP}")
        while True:
            if interactive:
                self.chat.prompt(f"{self.user}> ")
            line = stream.readline()
            self.chat.answered()
            if not line:
                break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not interactive:
                self.chat.say(f"{self.user}> {line}")
            if line in ("quit", "exit"):
                break
            self.execute(line)
        self.engine.wait_idle(timeout=600)
        self.chat.close()
        return 0

    def execute(self, line: str) -> None:
        """Run one console line. A line the bot refuses gets a reply; it never raises."""
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if word == "/as":
            if not rest or " " in rest or not rest.isprintable():
                self._reply(Reply("usage: /as <user>"))
            else:
                self.user = rest
                self.chat.say(f"(you are now {self.user})")
            return
        if word == "/help":
            self._help(rest)
            return
        if word.startswith("/"):
            self._reply(handle_text(self.engine, word, rest, self._ctx()))
            return
        if word == "wait":
            self._wait(rest)
            return
        if word == "tick":
            self._tick(rest)
            return
        if word == "press":
            self._press(rest)
            return
        if word == "help":
            self._help(rest)
            return
        self._reply(Reply(f"unknown console command {_show(word)}. {PROMPT_HELP}"))

    def _help(self, topic: str) -> None:
        """`help` / `/help`: the console's words and the overview, or one command's help."""
        if topic:
            self.chat.say(help_text(topic))
        else:
            self.chat.say(CONSOLE_HELP + "\n" + help_text(None))

    def _wait(self, what: str) -> None:
        """`wait` (runs, the queue and monitoring windows) or `wait runs` (runs and the queue)."""
        if what not in ("", "runs"):
            self._reply(Reply("usage: wait | wait runs"))
            return
        states = _BUSY if what == "runs" else _BUSY + _WATCHING
        try:
            self.wait_for(states)
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.chat.say("(stopped waiting)")

    def wait_for(self, states: tuple[State, ...]) -> None:
        """Block until no deployment is in `states` and no run is in flight."""
        started = time.monotonic()
        announced: set[int] = set()
        while True:
            self.engine.wait_idle(timeout=600)
            busy = [
                s.active for s in self.engine.status() if s.active is not None and s.active.state in states
            ]
            if not busy:
                return
            limit = max(self._window(d.env) for d in busy) + WAIT_SLACK
            if time.monotonic() - started > limit:
                labels = ", ".join(d.label for d in busy)
                self.chat.say(f"(stopped waiting: {labels} still busy after {limit:.0f}s)")
                return
            watched = [d for d in busy if d.state in _WATCHING and d.id not in announced]
            if watched and self.interactive:
                labels = ", ".join(d.label for d in watched)
                self.chat.say(f"(waiting for the monitoring window of {labels}; Ctrl-C stops waiting)")
            announced.update(d.id for d in watched)
            time.sleep(0.05)

    def _window(self, env: str) -> float:
        monitor = self.engine.config.environments[env].monitor
        return monitor.duration + 3 * monitor.interval

    def _ctx(self) -> Context:
        return Context(user=self.user, channel=self.channel)

    def _reply(self, reply: Reply | None) -> None:
        if reply is None:
            return
        if reply.ephemeral:
            self.chat.post_ephemeral(self.channel, self.user, reply.text)
        else:
            self.chat.say(f"[{self.channel}] {reply.text}")

    # -- what tick and press act on ------------------------------------------------------
    def _cards_newest_first(self, deployment_id: int | None) -> list[Card]:
        cards = list(self.chat.cards.values())
        cards.reverse()
        if deployment_id is not None:
            cards = [c for c in cards if c.deployment_id == deployment_id]
        return cards

    def pressable(self, deployment_id: int | None = None) -> Target | None:
        """The message `press` acts on: the latest one with buttons (of `deployment_id` if given).

        The latest message shown with buttons wins (a card or an alert); when it has none any
        more (a dry run that finished), the newest card that still has buttons.
        """
        latest = self.chat.latest
        if (
            latest is not None
            and latest.buttons
            and (deployment_id is None or _of(latest.buttons, latest.card, deployment_id))
        ):
            return Target(latest.buttons, latest.card)
        for card in self._cards_newest_first(deployment_id):
            if card.buttons:
                return Target(card.buttons, card)
        return None

    def tickable(self, deployment_id: int | None = None) -> Card | None:
        """The card `tick` acts on: the latest one with an open checklist (of `deployment_id`)."""
        latest = self.chat.latest
        card = latest.card if latest is not None else None
        if card is not None and card.checklist_open and deployment_id in (None, card.deployment_id):
            return card
        for card in self._cards_newest_first(deployment_id):
            if card.checklist_open:
                return card
        return None

    def _tick(self, arg: str) -> None:
        arg, deployment_id = split_target(arg)
        card = self.tickable(deployment_id)
        if card is None:
            where = f" on #{deployment_id}" if deployment_id is not None else ""
            self._reply(Reply(f"there is no checklist to tick{where}"))
            return
        words = arg.replace(",", " ").split()
        if words == ["all"]:
            numbers = [item.number for item in card.checklist]
        elif words and all(_NUMBER.fullmatch(w) for w in words):
            numbers = [int(w) for w in words]
        else:
            self._reply(Reply("usage: tick <n> [n...] [#id] | tick all [#id]"))
            return
        unknown = [n for n in numbers if not 1 <= n <= len(card.checklist)]
        if unknown:
            self._reply(Reply(f"Refused: the checklist has items 1 to {len(card.checklist)}"))
            return
        # only what this user changes, as a Slack checkbox click sends it (no lost ticks on a race)
        action = Action.SIGNOFF_CHECKLIST if card.kind == "signoff" else Action.CHECKLIST
        changes = dict.fromkeys(numbers, True)
        self._reply(handle_action(self.engine, action, str(card.deployment_id), self._ctx(), changes=changes))

    def _press(self, arg: str) -> None:
        arg, deployment_id = split_target(arg)
        target = self.pressable(deployment_id)
        if target is None:
            where = f" on #{deployment_id}" if deployment_id is not None else ""
            self._reply(Reply(f"there is no button to press{where}"))
            return
        buttons = target.buttons
        choice = None
        if _NUMBER.fullmatch(arg) and 1 <= int(arg) <= len(buttons):
            choice = buttons[int(arg) - 1]
        else:
            wanted = arg.casefold()
            exact = [b for b in buttons if b.label.casefold() == wanted]
            partial = [b for b in buttons if wanted and wanted in b.label.casefold()]
            if exact:
                choice = exact[0]
            elif len(partial) == 1:
                choice = partial[0]
        if choice is None:
            labels = ", ".join(f"{n}={b.label}" for n, b in enumerate(buttons, 1))
            whose = f" of #{target.card.deployment_id}" if target.card is not None else ""
            hint = "" if deployment_id is not None else "; name another deployment with `press <button> #id`"
            self._reply(Reply(f"no button {_show(arg)} on the latest card{whose} (buttons: {labels}){hint}"))
            return
        self._reply(handle_action(self.engine, choice.action, choice.value, self._ctx()))


def _of(buttons: tuple[Button, ...], card: Card | None, deployment_id: int) -> bool:
    """Do these buttons (or this card) belong to `deployment_id`?"""
    if card is not None:
        return card.deployment_id == deployment_id
    return all(b.value.split(":", 1)[0] == str(deployment_id) for b in buttons)


def _show(text: str, limit: int = 40) -> str:
    """Quote user text in a reply: truncated, non-printable characters escaped."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:limit])
    return f"'{shown}…'" if len(text) > limit else f"'{shown}'"


def run_console(
    engine: Engine, chat: ConsoleChat, stream: TextIO | None = None, *, channel: str = "#deploys"
) -> int:
    """Run the console on `stream` (stdin by default); interactive when it is a terminal."""
    stream = stream or sys.stdin
    console = Console(engine, chat, channel=channel)
    return console.run(stream, interactive=stream.isatty())
