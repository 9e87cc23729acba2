#!/usr/bin/env bash
# Install everything the tests need (Python deps, OpenSSH server, PostgreSQL access, Prometheus) and run
# lint, type checks and the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
[ -x scripts/ensure-sshd.sh ] && scripts/ensure-sshd.sh
[ -x scripts/ensure-chromium.sh ] && scripts/ensure-chromium.sh
[ -x scripts/ensure-prometheus.sh ] && scripts/ensure-prometheus.sh
if [ -x scripts/ensure-postgres.sh ]; then
    eval "$(scripts/ensure-postgres.sh)"   # exports GONOGO_TEST_PG_DSN
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Most tests wait on real servers (sshd, PostgreSQL, Prometheus, Chromium, child processes), so
# three workers on two cores take the suite from ~9.5 to ~4 minutes. GONOGO_TEST_WORKERS=0: serially.
.venv/bin/python -m pytest -n "${GONOGO_TEST_WORKERS:-3}" "$@"
