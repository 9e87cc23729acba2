"""The steps running now, host by host, so shutdown can stop them on their hosts."""

from __future__ import annotations

import threading

from runners.base import HostSession


class RunningSteps:
    """Which session runs which step (its journal name) on each host, right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[str, tuple[HostSession, str]] = {}

    def add(self, host: str, session: HostSession, journal: str) -> None:
        """`host` runs the step `journal` on `session`."""
        with self._lock:
            self._steps[host] = (session, journal)

    def discard(self, host: str) -> None:
        """`host`'s step is over."""
        with self._lock:
            self._steps.pop(host, None)

    def stop(self, bound: float = 60.0) -> list[str]:
        """Stop every running step's process group on its host (TERM, then KILL:
        `HostSession.stop`), all hosts at once, waiting at most `bound` seconds: `app1: killed`."""
        with self._lock:
            running = list(self._steps.items())
        out: list[str] = []

        def stop(name: str, session: HostSession, journal: str) -> None:
            try:
                said = session.stop(journal)
            except Exception as exc:
                said = f"could not stop it ({exc})"
            with self._lock:
                out.append(f"{name}: {said}")

        threads = [
            threading.Thread(target=stop, args=(name, session, journal), daemon=True)
            for name, (session, journal) in running
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(bound)
        with self._lock:
            return sorted(out)
