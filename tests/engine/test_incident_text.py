"""What the incident's alert and the card's round line say, with 3 checks and with 50."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.deployment import Deployment
from bot.engine import incidents
from runners.checks import CheckResult

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def result(name: str, ok: bool = True, unsure: bool = False) -> CheckResult:
    error = "inconclusive: no data" if unsure else None if ok else "expected status 200, got 503"
    return CheckResult(name, "http", ok, "200" if ok else "503", 0.003, error, NOW, unsure)


def test_a_few_checks_are_each_on_the_card_many_are_counted() -> None:
    few = [result("health@app1"), result("health@app2", ok=False)]
    assert incidents.round_line("Round 2/10", few) == (
        "Round 2/10: health@app1 ✓ 200 (3 ms) · health@app2 ✗ expected status 200, got 503 (3 ms)"
    )
    many = [result(f"health@app{i}", ok=i not in (7, 9, 11, 30)) for i in range(50)]
    many.append(result("latency", ok=False, unsure=True))
    assert incidents.round_line("Round 2/10", many) == (
        "Round 2/10: 46/51 ok; failing: health@app7, health@app9, health@app11 and 1 more; inconclusive: latency"
    )


def test_the_alert_names_a_few_failing_checks_and_how_close_each_is() -> None:
    d = Deployment(env="prod", requester="alice", ref="v2", sha=None, created_at=NOW, id=7)
    failing = [f"health@app{i}" for i in range(1, 6)]
    counts = {name: (1, 3) for name in failing}
    text = incidents.failing_text(d, failing, counts, 4, 20, recovered=["db"])
    assert text == (
        "⚠️ prod: 5 checks failing while monitoring #7 (v2), round 4/20: health@app1 (1/3), health@app2 (1/3), "
        "health@app3 (1/3) and 2 more. (failures/limit; details in the thread) Recovered: db."
    )
    summary = incidents.failure_summary([result(n, ok=False) for n in failing])
    assert summary.endswith("; and 2 more") and summary.count("✗") == 3
