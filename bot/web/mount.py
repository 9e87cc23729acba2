"""Serve the web view beside another ASGI app: paths under its prefix go to it, the rest elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Asgi = Callable[[Any, Any, Any], Any]


def mount(prefix: str, web: Asgi, other: Asgi) -> Asgi:
    """An ASGI app sending `prefix` and everything under it to `web`, the rest to `other`."""
    prefix = prefix.rstrip("/")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        if path == prefix or path.startswith(prefix + "/"):
            await web(scope, receive, send)
        else:
            await other(scope, receive, send)

    return app


__all__ = ["mount"]
