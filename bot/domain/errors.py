"""Errors the engine's collaborators raise and its callers catch (kept apart to avoid import cycles)."""

from __future__ import annotations


class Refused(Exception):
    """A user-facing refusal: the message says why (policy, lock, state, bad input)."""


class Deferred(Exception):
    """Raised by a timer's handler whose work this process must leave undone (it is shutting
    down): its schedule row is not marked done, so the next scheduler to lead fires it again, as
    if this process had died in the handler."""


__all__ = ["Deferred", "Refused"]
