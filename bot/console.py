"""`gonogo console`: talk to the bot in a terminal, interactively or from a script on stdin.

The console's own words (kept stable, scripts rely on them):
  /as <user>        switch the acting user
  /deploy ...       any slash command, typed as in Slack
  tick <n>|all      tick checklist items on the latest card
  press <label|n>   press a button on the latest card (exact label beats a partial one)
  wait              block until no work is in flight
  quit              exit
In script mode a refused line is printed with its reason and the script goes on.
"""

from __future__ import annotations

import sys
from typing import TextIO

from bot.chat.console import ConsoleChat
from bot.engine import Engine
from commands.handlers import Context, Reply, handle_action, handle_text

PROMPT_HELP = "Type /deploy help, or: /as <user>, tick <n|all>, press <button>, wait, quit"


class Console:
    """The read-eval-print loop over a ConsoleChat and an Engine."""

    def __init__(
        self, engine: Engine, chat: ConsoleChat, *, user: str = "alice", channel: str = "#deploys"
    ) -> None:
        self.engine = engine
        self.chat = chat
        self.user = user
        self.channel = channel

    def run(self, stream: TextIO, *, interactive: bool) -> int:
        """Read lines until EOF or `quit`; returns the exit status."""
        if interactive:
            self.chat.say(f"gonogo console: you are {self.user}. {PROMPT_HELP}")
        while True:
            if interactive:
                self.chat.out.write(f"{self.user}> ")
                self.chat.out.flush()
            line = stream.readline()
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
        return 0

    def execute(self, line: str) -> None:
        """Run one console line."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "/as":
            if not rest or " " in rest:
                self._reply(Reply("usage: /as <user>"))
            else:
                self.user = rest
                self.chat.say(f"(you are now {self.user})")
            return
        if word.startswith("/"):
            self._reply(handle_text(self.engine, word, rest, self._ctx()))
            return
        if word == "wait":
            self.engine.wait_idle(timeout=600)
            return
        if word == "tick":
            self._tick(rest)
            return
        if word == "press":
            self._press(rest)
            return
        if word == "help":
            self.chat.say(PROMPT_HELP)
            return
        self._reply(Reply(f"unknown console command {word!r}. {PROMPT_HELP}"))

    def _ctx(self) -> Context:
        return Context(user=self.user, channel=self.channel)

    def _reply(self, reply: Reply | None) -> None:
        if reply is None:
            return
        if reply.ephemeral:
            self.chat.post_ephemeral(self.channel, self.user, reply.text)
        else:
            self.chat.say(f"[{self.channel}] {reply.text}")

    def _tick(self, arg: str) -> None:
        latest = self.chat.latest
        if latest is None or latest.card is None or not latest.card.checklist:
            self._reply(Reply("there is no checklist to tick"))
            return
        card = latest.card
        try:
            if arg == "all":
                numbers = [item.number for item in card.checklist]
            else:
                numbers = [int(x) for x in arg.replace(",", " ").split()]
            if not numbers:
                raise ValueError
        except ValueError:
            self._reply(Reply("usage: tick <n> [n...] | tick all"))
            return
        unknown = [n for n in numbers if not 1 <= n <= len(card.checklist)]
        if unknown:
            self._reply(Reply(f"Refused: the checklist has items 1 to {len(card.checklist)}"))
            return
        # the same action a Slack checkbox sends: the full set of ticked items
        ticked = {item.number for item in card.checklist if item.ticked} | set(numbers)
        action = "signoff_checklist" if card.kind == "signoff" else "checklist"
        self._reply(handle_action(self.engine, action, str(card.deployment_id), self._ctx(), ticked=ticked))

    def _press(self, arg: str) -> None:
        latest = self.chat.latest
        if latest is None or not latest.buttons:
            self._reply(Reply("there is no button to press"))
            return
        buttons = latest.buttons
        choice = None
        if arg.isdigit() and 1 <= int(arg) <= len(buttons):
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
            self._reply(Reply(f"no button {arg!r} on the latest card (buttons: {labels})"))
            return
        self._reply(handle_action(self.engine, choice.action, choice.value, self._ctx()))


def run_console(
    engine: Engine, chat: ConsoleChat, stream: TextIO | None = None, *, channel: str = "#deploys"
) -> int:
    """Run the console on `stream` (stdin by default); interactive when it is a terminal."""
    stream = stream or sys.stdin
    console = Console(engine, chat, channel=channel)
    return console.run(stream, interactive=stream.isatty())
