"""`SlackDirectory`: user groups resolved through `usergroups.users.list`, cached with a TTL.

Approver and requester groups in the config are Slack user group ids (`S0123ABCD`). A lookup
that fails (network, missing `usergroups:read` scope, unknown group) is logged and yields an
empty set, which the policy turns into a refusal: a Slack outage never crashes a click, and
never lets anyone through. `problem(group)` says why the latest lookup failed ("could not check
group S0123ABCD: the app lacks the usergroups:read scope…"), so the refusal can say so instead
of "you are not an approver". Failures are not cached, so the next click asks again; a lookup
that succeeds clears the problem.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.base import GroupLookup

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

    def lookup(self, group: str) -> GroupLookup:
        """The user ids in user group `group` (cached `ttl` seconds); none, with the reason, on
        any error (failures are not cached: the next lookup asks again)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(group)
        if hit is not None and now - hit[0] < self.ttl:
            return GroupLookup(hit[1])
        try:
            resp = self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            log.error("user group %s: usergroups.users.list failed: %s", group, error)
            return _failed(group, _explain(error, exc.response.get("needed")))
        except Exception as exc:
            log.error("user group %s: usergroups.users.list failed: %s: %s", group, type(exc).__name__, exc)
            return _failed(group, f"Slack could not be reached ({type(exc).__name__})")
        users = frozenset(str(u) for u in resp.get("users") or ())
        with self._lock:
            self._cache[group] = (now, users)
        return GroupLookup(users)

    def members(self, group: str) -> frozenset[str]:
        """The user ids in `group` (empty on any error)."""
        return self.lookup(group).members

    def forget(self, group: str | None = None) -> None:
        """Drop one cached group (or all) so the next lookup asks Slack."""
        with self._lock:
            if group is None:
                self._cache.clear()
            else:
                self._cache.pop(group, None)


def _failed(group: str, reason: str) -> GroupLookup:
    return GroupLookup(frozenset(), f"could not check group {group}: {reason}")


def _explain(error: str, needed: object = None) -> str:
    """Slack's error code for a failed `usergroups.users.list`, with what it means."""
    if error == "missing_scope":
        scope = needed or "usergroups:read"
        return f"missing_scope (the Slack app lacks the {scope} scope; reinstall it with that scope)"
    if error == "no_such_subteam":
        return "no_such_subteam (Slack has no user group with that id; check the config)"
    if error in ("invalid_auth", "not_authed", "token_revoked", "account_inactive"):
        return f"{error} (Slack refused gonogo's token)"
    if error == "ratelimited":
        return "ratelimited (Slack asked gonogo to slow down; try again in a minute)"
    return error
