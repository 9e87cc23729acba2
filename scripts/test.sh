#!/usr/bin/env bash
# Install everything the tests need (Python deps, OpenSSH server, PostgreSQL access) and run
# lint, type checks and the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
[ -x scripts/ensure-sshd.sh ] && scripts/ensure-sshd.sh
[ -x scripts/ensure-chromium.sh ] && scripts/ensure-chromium.sh
if [ -x scripts/ensure-postgres.sh ]; then
    eval "$(scripts/ensure-postgres.sh)"   # exports GONOGO_TEST_PG_DSN
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
