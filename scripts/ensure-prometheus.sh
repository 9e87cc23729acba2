#!/usr/bin/env bash
# Make sure this machine can run the metric-check tests: a Prometheus server binary (Debian's
# `prometheus` package). Idempotent; installs only when missing (apt-get, as root,
# non-interactively). The tests start their own throwaway servers (tests/support/prometheus.py:
# own config, port and data dir); nothing here starts, stops or configures a system Prometheus.
#
# The binary the tests use: $GONOGO_PROMETHEUS, else `prometheus` on PATH, else
# /usr/bin/prometheus.
set -euo pipefail

log() { echo "ensure-prometheus: $*" >&2; }

find_prometheus() {
    if [ -n "${GONOGO_PROMETHEUS:-}" ] && [ -x "${GONOGO_PROMETHEUS}" ]; then
        echo "$GONOGO_PROMETHEUS"
    elif command -v prometheus >/dev/null 2>&1; then
        command -v prometheus
    elif [ -x /usr/bin/prometheus ]; then
        echo /usr/bin/prometheus
    else
        return 1
    fi
}

if ! binary="$(find_prometheus)"; then
    if [ "$(id -u)" -ne 0 ]; then
        log "no prometheus binary; run as root or install it: apt-get install prometheus"
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "no prometheus binary and no apt-get here; install Prometheus and set GONOGO_PROMETHEUS"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: the server only (no node exporter, no web console libraries).
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # Where an init system exists the package starts a system server on :9090; the tests
    # neither need nor touch it.
    binary="$(find_prometheus)"
fi
log "$("$binary" --version 2>&1 | head -n1) ready"
