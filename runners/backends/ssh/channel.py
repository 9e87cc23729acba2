"""One command on one SSH channel: output decoding, exit signals, the loop's timing constants."""

from __future__ import annotations

import codecs
import signal
from collections.abc import Callable

#: Seconds the client waits beyond `timeout` + `KILL_AFTER` before it gives up on a silent channel.
GUARD_SLACK = 10.0
#: After the exit status, seconds to wait for output still in flight when the command left a
#: background process holding its stdout/stderr open (OpenSSH would wait for it forever).
EXIT_DRAIN = 2.0
#: How often a waiting command loop re-checks liveness and the guard.
TICK = 0.5
RECV_BYTES = 32768


def signal_name(name: str) -> str:
    """`SIGKILL` for the SSH protocol's `KILL` (names are sent without the `SIG` prefix)."""
    return name if name.startswith("SIG") else f"SIG{name}"


def signal_code(name: str) -> int | None:
    """128 + the signal's number, as a shell reports a process killed by it."""
    try:
        return 128 + int(signal.Signals[signal_name(name)])
    except KeyError:
        return None


class LineStream:
    """Decodes one byte stream (UTF-8, incrementally) and forwards whole lines to a sink."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def write(self, data: bytes) -> None:
        """Buffer `data`; emit every complete line."""
        text = self._pending + self._decoder.decode(data)
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) > 8192:
            cut = len(text)
        self._pending = text[cut:]
        if cut:
            self._emit(text[:cut])

    def close(self) -> None:
        """Emit the unfinished last line, if any."""
        rest, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
        if rest:
            self._emit(rest)
