"""`SlackDirectory`: user groups resolved through `usergroups.users.list`, cached with a TTL.

Approver and requester groups in the config are Slack user group ids (`S0123ABCD`). A lookup
that fails (network, missing `usergroups:read` scope, unknown group) is logged and yields an
empty set, which the policy turns into a refusal: a Slack outage never crashes a click, and
never lets anyone through. Failures are not cached, so the next click asks again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger("gonogo.slack")

DEFAULT_TTL = 300.0


class SlackDirectory:
    """Implements `bot.chat.base.Directory` over Slack user groups. Thread-safe."""

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, group: str) -> frozenset[str]:
        """The user ids in user group `group` (empty on any error)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(group)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            resp = self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.error("user group %s: usergroups.users.list failed: %s", group, exc.response.get("error"))
            return frozenset()
        except Exception as exc:
            log.error("user group %s: usergroups.users.list failed: %s: %s", group, type(exc).__name__, exc)
            return frozenset()
        users = frozenset(str(u) for u in resp.get("users") or ())
        with self._lock:
            self._cache[group] = (now, users)
        return users

    def forget(self, group: str | None = None) -> None:
        """Drop one cached group (or all) so the next lookup asks Slack."""
        with self._lock:
            if group is None:
                self._cache.clear()
            else:
                self._cache.pop(group, None)
