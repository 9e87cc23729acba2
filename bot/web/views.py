"""What each page of the web view shows, read from the engine and its store (never written)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.engine.queries import stats_record
from bot.web.charts import bar_chart, dora_series

if TYPE_CHECKING:
    from bot.engine import Engine

PAGE = 50
TAIL = 160

Page = tuple[str, dict[str, Any]] | Response


class Views:
    """Page data of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def fingerprint(self) -> str:
        """Changes whenever a recent deployment or a lock changes (what live pages follow)."""
        rows = [(d.id, d.version) for d in self.store.deployments(limit=20)]
        locks = [(lock.env, lock.owner) for lock in self.store.locks()]
        return hashlib.sha1(repr((rows, locks)).encode()).hexdigest()[:16]

    def index(self, request: Request) -> Page:
        """Every environment: what runs, what is in flight, locks; then the newest deployments."""
        statuses = self.engine.status(recent=0)
        recent = self.store.deployments(limit=15)
        return "index.html", {"title": "Environments", "statuses": statuses, "recent": recent, "live": True}

    def history(self, request: Request) -> Page:
        """Deploy history, of every environment or one (`/envs/{env}`), newest first, paged."""
        env = request.path_params.get("env")
        if env is not None and env not in self.engine.config.environments:
            return PlainTextResponse(f"unknown environment {env!r}", status_code=404)
        before = _int(request.query_params.get("before"))
        deployments = self.store.deployments(env, limit=PAGE, before_id=before)
        older = None
        if len(deployments) == PAGE:
            older = f"{request.url.path}?before={deployments[-1].id}"
        heading = f"History of {env}" if env else "Deploy history"
        return "history.html", {
            "title": heading, "heading": heading, "env": env, "deployments": deployments, "older": older,
            "live": before is None,
        }  # fmt: skip

    def deploy(self, request: Request) -> Page:
        """One deployment: its facts, commits, step timeline and event log."""
        d = self.store.get(int(request.path_params["deployment_id"]))
        if d is None:
            return PlainTextResponse("there is no such deployment", status_code=404)
        steps = [
            dict(r, tail=_tail(r.get("error") or r.get("output") or ""))
            for r in self.store.host_results(d.id)
        ]
        events = self.store.events(deployment_id=d.id)
        title = f"{d.rules.title} #{d.id}"
        return "deploy.html", {"title": title, "d": d, "steps": steps, "events": events, "live": True}

    def dora(self, request: Request) -> Page:
        """The four DORA figures and their charts, per environment."""
        days = min(max(_int(request.query_params.get("days")) or 30, 1), 365)
        wanted = request.query_params.get("env")
        names = list(self.engine.config.environments)
        shown = [wanted] if wanted in names else names
        now = self.engine.now()
        blocks = []
        for env in shown:
            figures = self.engine.stats(env, days)
            cutoff = now - timedelta(days=days)
            records = [
                stats_record(d)
                for d in self.store.deployments(env, limit=1000)
                if not d.dry_run and d.created_at >= cutoff
            ]
            charts = [bar_chart(s) for s in dora_series(records, now, days)]
            blocks.append({"env": env, "lines": figures.lines(), "charts": charts})
        return "dora.html", {"title": "DORA", "blocks": blocks, "days": days, "envs": names, "live": False}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _tail(text: str) -> str:
    last = [line for line in str(text).splitlines() if line.strip()]
    tail = last[-1] if last else ""
    return tail[-TAIL:]


__all__ = ["Views"]
