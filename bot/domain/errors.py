"""Errors the engine's collaborators raise and its callers catch (kept apart to avoid import cycles)."""

from __future__ import annotations


class Refused(Exception):
    """A user-facing refusal: the message says why (policy, lock, state, bad input)."""


__all__ = ["Refused"]
