"""DORA charts as SVG, drawn on the server: bars per day or week, no JavaScript.

`dora_series` turns deployments into the four series (deploys per day, median lead time per
day, change failure rate per week, time to restore per incident); `bar_chart` draws one.
Every label is escaped: refs and environment names are user input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from statistics import median

from bot.domain.stats import StatsRecord

WIDTH, HEIGHT, PAD = 520, 180, 28


@dataclass(frozen=True)
class Series:
    """One chart: bars with labels, in `unit`."""

    title: str
    unit: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    color: str = "#2f6fdf"


def bar_chart(series: Series) -> str:
    """An SVG bar chart of `series` (safe to put in HTML as it is)."""
    n = max(len(series.values), 1)
    top = max([*series.values, 0.0]) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    bar_w = inner_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(series.title)}">',
        f'<text x="{PAD}" y="16" class="t">{escape(series.title)} (max {top:g} {escape(series.unit)})</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
    ]
    for i, (label, value) in enumerate(zip(series.labels, series.values, strict=True)):
        h = inner_h * value / top
        x = PAD + i * bar_w
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{series.color}"><title>{escape(label)}: {value:g} {escape(series.unit)}</title></rect>'
        )
        if n <= 16 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - PAD + 12}" class="l" text-anchor="middle">{escape(label)}</text>'
            )
    if not series.values or not any(series.values):
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="l">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def _days(now: datetime, days: int) -> list[date]:
    start = (now - timedelta(days=days - 1)).date()
    return [start + timedelta(days=i) for i in range(days)]


def dora_series(records: Sequence[StatsRecord], now: datetime, days: int) -> list[Series]:
    """The four DORA series for one environment over the last `days`."""
    window = _days(now, days)
    shipped = [
        r for r in records if r.kind == "deploy" and r.outcome in ("success", "rolled_back") and r.live
    ]
    per_day = {d: 0.0 for d in window}
    lead: dict[date, list[float]] = {d: [] for d in window}
    for r in shipped:
        day = r.live.date()  # type: ignore[union-attr]
        if day in per_day:
            per_day[day] += 1
            if r.committed_at and r.live:
                lead[day].append((r.live - r.committed_at).total_seconds() / 3600)
    weeks = sorted({d - timedelta(days=d.weekday()) for d in window})
    attempts = {w: 0 for w in weeks}
    failures = {w: 0 for w in weeks}
    for r in records:
        if r.kind != "deploy" or r.outcome not in ("success", "rolled_back", "failed"):
            continue
        week = r.requested_at.date() - timedelta(days=r.requested_at.weekday())
        if week in attempts:
            attempts[week] += 1
            failures[week] += r.outcome != "success"
    restores = _restores(records)
    label = [d.strftime("%m-%d") for d in window]
    return [
        Series("Deployment frequency", "deploys/day", tuple(label), tuple(per_day.values())),
        Series("Lead time (median per day)", "h", tuple(label),
               tuple(round(median(v), 2) if v else 0.0 for v in lead.values()), "#3a9d5d"),
        Series("Change failure rate (per week)", "%", tuple(w.strftime("%m-%d") for w in weeks),
               tuple(round(100 * failures[w] / attempts[w], 1) if attempts[w] else 0.0 for w in weeks), "#d9534f"),
        Series("Time to restore (per incident)", "min", tuple(f"#{i}" for i, _ in restores),
               tuple(v for _, v in restores), "#e39b2d"),
    ]  # fmt: skip


def _restores(records: Sequence[StatsRecord]) -> list[tuple[int, float]]:
    """(failed deployment id, minutes until the next healthy release of its environment)."""
    ordered = sorted(records, key=lambda r: r.requested_at)
    out = []
    for r in ordered:
        if r.kind != "deploy" or r.outcome not in ("failed", "rolled_back") or r.finished_at is None:
            continue
        later = [
            x.live for x in ordered
            if x.live and x.live > r.finished_at and x.outcome in ("success", "rolled_back") and x.id != r.id
        ]  # fmt: skip
        if later:
            out.append((r.id, round((min(later) - r.finished_at).total_seconds() / 60, 1)))
    return out[-30:]


__all__ = ["Series", "bar_chart", "dora_series"]
