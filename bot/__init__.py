"""gonogo, the service. Read it in the order a deploy flows through it:

- adapters: `bot.slack` (Bolt), `bot.console` (the terminal chat), both over the `bot.chat` seam;
- `commands` (beside `bot`): the chat command language the adapters share;
- `bot.engine`: the deploy engine (requests, approvals, runs, monitoring, failures, rollbacks,
  sign-off) over the seams `bot.store`, `bot.timing`, `bot.source` and `runners` (beside `bot`);
- `bot.domain`: the pure model; `bot.config`: the configuration;
- `bot.ops`: the service's endpoints, metrics and logs; `bot.app`: the CLI and the one place
  that wires it all (`bot.app.wiring`).
"""

__all__: list[str] = []
