"""The steps running now, host by host, so shutdown can stop them on their hosts; and the steps
a resume is unsure of (their outcome never reached the bot), which the host's journal decides."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping

from runners.base import Host, HostSession
from runners.journal import UNSURE


class RunningSteps:
    """Which session runs which step (its journal name) on each host, right now."""

    def __init__(
        self, unsure: Mapping[str, Collection[str]] | None = None, rerun: Collection[str] = ()
    ) -> None:
        self._lock = threading.Lock()
        self._steps: dict[str, tuple[HostSession, str]] = {}
        #: Journal name → hosts on which that step started and its outcome was never recorded.
        self.unsure = {key: frozenset(hosts) for key, hosts in (unsure or {}).items()}
        #: Journal names a human allowed to run again though their journal is gone.
        self.rerun = frozenset(rerun)

    def refusal(self, session: HostSession, host: Host, journal: str) -> str | None:
        """Why the step `journal` must not run on `host` now: it started there before (its outcome
        unknown to the bot) and the host's journal is gone or lost it, and no human allowed a
        second run. None: run it (the journal replays, reattaches or runs it)."""
        if host.name not in self.unsure.get(journal, ()):
            return None
        state = session.journal_state(journal)
        if not state.unknown:
            return None
        if journal in self.rerun:
            if state.state == "lost":
                session.stop(journal)  # sets the lost record aside: the step runs afresh
            return None
        why = (
            "its journal is gone" if state.state == "gone" else "it started and the host lost it (restarted?)"
        )
        return f"{UNSURE} ({why}): not run again without a human's say-so"

    def add(self, host: str, session: HostSession, journal: str) -> None:
        """`host` runs the step `journal` on `session`."""
        with self._lock:
            self._steps[host] = (session, journal)

    def discard(self, host: str) -> None:
        """`host`'s step is over."""
        with self._lock:
            self._steps.pop(host, None)

    def names(self) -> list[str]:
        """The hosts (or other names `add` was given) with a step running now."""
        with self._lock:
            return sorted(self._steps)

    def stop(self, bound: float = 60.0) -> dict[str, str]:
        """Stop every running step's process group on its host (TERM, then KILL:
        `HostSession.stop`), all hosts at once, waiting at most `bound` seconds: what happened
        on each (`{"app1": "killed"}`)."""
        with self._lock:
            running = list(self._steps.items())
        out: dict[str, str] = {}

        def stop(name: str, session: HostSession, journal: str) -> None:
            try:
                said = session.stop(journal)
            except Exception as exc:
                said = f"could not stop it ({exc})"
            with self._lock:
                out[name] = said

        threads = [
            threading.Thread(target=stop, args=(name, session, journal), daemon=True)
            for name, (session, journal) in running
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(bound)
        with self._lock:
            return dict(sorted(out.items()))
