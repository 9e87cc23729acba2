"""Prometheus metrics (prometheus-client), exposed at `/metrics` by the ops endpoints."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

DEPLOYMENTS = Counter(
    "gonogo_deployments_total",
    "Deployments that reached a final state",
    ["env", "kind", "outcome"],
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "gonogo_step_duration_seconds",
    "Duration of one step on one host",
    ["env", "stage", "status"],
    registry=REGISTRY,
)
CHECKS = Counter("gonogo_check_results_total", "Check results", ["env", "check", "ok"], registry=REGISTRY)
SLACK_API_ERRORS = Counter(
    "gonogo_slack_api_errors_total", "Slack Web API calls that failed", ["method"], registry=REGISTRY
)
SLACK_API_RETRIES = Counter(
    "gonogo_slack_api_retries_total", "Slack Web API retries (429, network)", ["reason"], registry=REGISTRY
)
ACK_SECONDS = Histogram(
    "gonogo_ack_latency_seconds",
    "Time from receiving a Slack request to acknowledging it",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0),
    registry=REGISTRY,
)


def render() -> bytes:
    """The text exposition of every gonogo metric."""
    return generate_latest(REGISTRY)
