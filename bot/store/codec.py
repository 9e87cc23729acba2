"""Row <-> domain conversion shared by the SQL stores (times as ISO-8601 text, lists as JSON).

Also the few SQL pieces both stores build the same way: the live states as a literal list,
optional filters as a WHERE clause, host result rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.domain.deployment import Approval, Deployment, EventRecord, Lock, State
from bot.domain.details import Details
from bot.store.base import CheckRecord, Schedule
from runners.base import HostResult

DEPLOYMENT_COLUMNS = (
    "env", "kind", "state", "active", "version", "requester", "ref", "sha", "reason", "dry_run",
    "force", "checklist", "approvals", "required_approvals", "channel", "message_ts", "release_id",
    "rollback_of", "committed_at", "scheduled_at", "started_at", "finished_at", "heartbeat_at",
    "created_at", "updated_at", "error", "progress", "details", "live_at",
)  # fmt: skip
#: The states whose release is live: what `current_release` and the `deployments_live` index read.
LIVE_STATE_NAMES = ("monitoring", "succeeded", "signed_off")
#: Literal, not parameters: the partial index `deployments_live` serves a query only when the
#: query repeats its WHERE terms (SQLite), or lets the planner match its predicate (PostgreSQL).
LIVE_SQL = "(" + ", ".join(f"'{s}'" for s in LIVE_STATE_NAMES) + ")"
#: What `prune` deletes once older than the cutoff (the `{cutoff}` placeholder): check results,
#: the host output of finished deployments, idempotency keys, finished schedules.
PRUNE_SQL = (
    "DELETE FROM check_results WHERE at < {cutoff}",
    "DELETE FROM host_results WHERE deployment_id IN "
    "(SELECT id FROM deployments WHERE finished_at IS NOT NULL AND finished_at < {cutoff})",
    "DELETE FROM idempotency_keys WHERE at < {cutoff}",
    "DELETE FROM schedules WHERE state IN ('done', 'cancelled') AND run_at < {cutoff}",
)

#: Queued runs a claimer may take, oldest first (`{p}`: the driver's placeholder; parameters: the
#: claimer, then the stale-before time): the deployment is still in the state the run was queued
#: in, and nobody holds the run, or another claimer took it before that time and never started it
#: (a started run has left the queue). Both stores add their LIMIT (and PostgreSQL its row lock).
CLAIMABLE_RUN = (
    "run_queue q JOIN deployments d ON d.id = q.deployment_id "
    "WHERE d.state = q.state AND (q.claimed_by IS NULL OR (q.claimed_by <> {p} AND q.claimed_at < {p})) "
    "ORDER BY q.queued_at, q.deployment_id"
)
#: What a saved transition runs in its transaction: the run leaves the queue once the deployment
#: leaves the state it was queued in (parameters: the id, the saved state).
DEQUEUE_SQL = "DELETE FROM run_queue WHERE deployment_id = {p} AND state <> {p}"

#: One batch of event-log retention (`{p}`: the placeholder; parameters: the cutoff, the batch
#: size): the oldest events before the cutoff, through the `events_at` index.
PRUNE_EVENTS_SQL = (
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < {p} ORDER BY at, id LIMIT {p})"
)
#: Events deleted per transaction, so retention never holds the write lock for long.
PRUNE_EVENTS_BATCH = 5000


def where(*terms: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`WHERE a AND b ...` of the conditions whose value is not None, and those values in order.

    Each term is a condition with one placeholder and its value; no condition left gives `""`.
    """
    kept = [(condition, value) for condition, value in terms if value is not None]
    clause = f"WHERE {' AND '.join(condition for condition, _ in kept)}" if kept else ""
    return clause, [value for _, value in kept]


def ts(value: datetime | None) -> str | None:
    """A datetime as ISO text in UTC (None stays None).

    Always UTC, so that stored times compare correctly as text (SQLite orders and filters
    them as strings): `10:00+01:00` and `09:30Z` would otherwise sort the wrong way round.
    """
    if value is None:
        return None
    return (value.astimezone(UTC) if value.utcoffset() is not None else value).isoformat()


def parse_ts(value: Any) -> datetime | None:
    """ISO text (or a datetime from a driver) back to a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def deployment_row(d: Deployment) -> dict[str, Any]:
    """A deployment as a flat row."""
    return {
        "env": d.env,
        "kind": d.kind,
        "state": d.state.value,
        "active": 1 if d.active and not d.dry_run else 0,  # dry runs never hold the env
        "version": d.version,
        "requester": d.requester,
        "ref": d.ref,
        "sha": d.sha,
        "reason": d.reason,
        "dry_run": int(d.dry_run),
        "force": int(d.force),
        "checklist": json.dumps(list(d.checklist)),
        "approvals": json.dumps([{"user": a.user, "at": a.at.isoformat()} for a in d.approvals]),
        "required_approvals": d.required_approvals,
        "channel": d.channel,
        "message_ts": d.message_ts,
        "release_id": d.release_id,
        "rollback_of": d.rollback_of,
        "committed_at": ts(d.committed_at),
        "scheduled_at": ts(d.scheduled_at),
        "started_at": ts(d.started_at),
        "finished_at": ts(d.finished_at),
        "heartbeat_at": ts(d.heartbeat_at),
        "created_at": ts(d.created_at),
        "updated_at": ts(d.updated_at),
        "error": d.error,
        "progress": d.progress,
        "details": json.dumps(d.details.to_json(), default=str),
        "live_at": ts(d.live_at),
    }


def deployment_from_row(row: dict[str, Any]) -> Deployment:
    """A row back to a deployment."""
    created = parse_ts(row["created_at"])
    assert created is not None
    return Deployment(
        id=int(row["id"]),
        env=row["env"],
        kind=row["kind"],
        state=State(row["state"]),
        version=int(row["version"]),
        requester=row["requester"],
        ref=row["ref"],
        sha=row["sha"],
        reason=row["reason"],
        dry_run=bool(row["dry_run"]),
        force=bool(row["force"]),
        checklist=tuple(bool(x) for x in json.loads(row["checklist"] or "[]")),
        approvals=tuple(
            Approval(user=a["user"], at=datetime.fromisoformat(a["at"]))
            for a in json.loads(row["approvals"] or "[]")
        ),
        required_approvals=int(row["required_approvals"]),
        channel=row["channel"],
        message_ts=row["message_ts"],
        release_id=row["release_id"],
        rollback_of=row["rollback_of"],
        committed_at=parse_ts(row["committed_at"]),
        scheduled_at=parse_ts(row["scheduled_at"]),
        started_at=parse_ts(row["started_at"]),
        finished_at=parse_ts(row["finished_at"]),
        heartbeat_at=parse_ts(row["heartbeat_at"]),
        created_at=created,
        updated_at=parse_ts(row["updated_at"]),
        error=row["error"],
        progress=row["progress"],
        details=Details.from_json(json.loads(row["details"] or "{}")),
        live_at=parse_ts(row.get("live_at")),
    )


def event_row(e: EventRecord) -> dict[str, Any]:
    """An event as a row."""
    return {
        "at": ts(e.at),
        "actor": e.actor,
        "action": e.action,
        "env": e.env,
        "deployment_id": e.deployment_id,
        "detail": e.detail,
    }


def with_deployment(event: EventRecord, deployment_id: int) -> EventRecord:
    """`event` naming deployment `deployment_id` (itself when it already does)."""
    if event.deployment_id == deployment_id:
        return event
    return replace(event, deployment_id=deployment_id)


def host_result_rows(deployment_id: int, stage: str, results: Sequence[HostResult]) -> list[tuple[Any, ...]]:
    """One `host_results` row per result: deployment_id, stage, step, host, status, exit_code,
    duration, output, error."""
    return [
        (deployment_id, stage, r.step, r.host, r.status, r.exit_code, r.duration, r.output, r.error)
        for r in results
    ]


def event_from_row(row: dict[str, Any]) -> EventRecord:
    """A row back to an event."""
    at = parse_ts(row["at"])
    assert at is not None
    return EventRecord(
        id=int(row["id"]),
        at=at,
        actor=row["actor"],
        action=row["action"],
        env=row["env"],
        deployment_id=row["deployment_id"],
        detail=row["detail"],
    )


def lock_from_row(row: dict[str, Any]) -> Lock:
    """A row back to a lock."""
    at = parse_ts(row["at"])
    assert at is not None
    return Lock(
        env=row["env"], owner=row["owner"], reason=row["reason"], at=at, automatic=bool(row["automatic"])
    )


def schedule_from_row(row: dict[str, Any]) -> Schedule:
    """A row back to a schedule."""
    run_at = parse_ts(row["run_at"])
    assert run_at is not None
    payload = row["payload"]
    return Schedule(
        id=int(row["id"]),
        kind=row["kind"],
        run_at=run_at,
        deployment_id=row["deployment_id"],
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload or {}),
        state=row["state"],
        key=row.get("key"),
        claimed_by=row.get("claimed_by"),
    )


def check_from_row(row: dict[str, Any]) -> CheckRecord:
    """A row back to a check record."""
    at = parse_ts(row["at"])
    assert at is not None
    return CheckRecord(
        name=row["name"],
        kind=row["kind"],
        ok=bool(row["ok"]),
        at=at,
        observed=row["observed"],
        latency=float(row["latency"]),
        error=row["error"],
        round=int(row["round"]),
        deployment_id=row["deployment_id"],
        env=row["env"],
    )


PG_BOOL_COLUMNS = ("active", "dry_run", "force")
PG_TIME_COLUMNS = (
    "committed_at", "scheduled_at", "started_at", "finished_at", "heartbeat_at", "created_at", "updated_at",
    "live_at",
)  # fmt: skip


def pg_deployment_row(d: Deployment) -> dict[str, Any]:
    """`codec.deployment_row` with PostgreSQL types: booleans and datetimes, not 0/1 and text."""
    row = deployment_row(d)
    for col in PG_BOOL_COLUMNS:
        row[col] = bool(row[col])
    for col in PG_TIME_COLUMNS:
        row[col] = getattr(d, col)
    assert tuple(row) == DEPLOYMENT_COLUMNS
    return row
