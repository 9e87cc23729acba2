"""Host strategies: how a stage fans out over a fleet (Capistrano's parallel/sequence/groups).

A strategy turns the host list into ordered batches; hosts inside a batch work concurrently,
at most `max_parallel` at once (a separate knob from the SSH backend's `max_handshakes`, which
bounds only connection set-up). A failure stops the rollout at the end of the current batch;
`pause` seconds separate batches (an abort during the pause stops before the next batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from runners.base import Host

StrategyKind = Literal["parallel", "sequential", "canary"]


@dataclass(frozen=True)
class Strategy:
    """`parallel` (one batch), `sequential` (one host at a time) or `canary` (first N, then batches).

    For `canary`, `batch_size` (hosts) or `batch_percent` (of the whole fleet) sizes the batches
    after the canary; with neither, the rest go in one batch. `pause` seconds separate batches.
    """

    kind: StrategyKind = "parallel"
    max_parallel: int = 10
    canary: int = 1
    batch_size: int | None = None
    batch_percent: int | None = None
    pause: float = 0.0

    def batches(self, hosts: Sequence[Host]) -> list[list[Host]]:
        """Split `hosts` into the ordered batches this strategy runs."""
        hosts = list(hosts)
        if not hosts:
            return []
        if self.kind == "sequential":
            return [[h] for h in hosts]
        if self.kind == "parallel":
            return [hosts]
        canary = max(1, self.canary)
        first, rest = hosts[:canary], hosts[canary:]
        out = [first]
        size = self._batch_size(len(hosts), len(rest))
        out.extend(rest[i : i + size] for i in range(0, len(rest), size))
        return out

    def _batch_size(self, total: int, remaining: int) -> int:
        if self.batch_size:
            return max(1, self.batch_size)
        if self.batch_percent:
            return max(1, math.ceil(total * min(100, self.batch_percent) / 100))
        return max(1, remaining)

    def describe(self) -> str:
        """Short human description, e.g. `canary 1, then batches of 25%`."""
        if self.kind != "canary":
            return self.kind if self.kind == "sequential" else f"parallel (max {self.max_parallel})"
        then = (
            f"batches of {self.batch_size}"
            if self.batch_size
            else f"batches of {self.batch_percent}%"
            if self.batch_percent
            else "the rest"
        )
        return f"canary {self.canary}, then {then}"
