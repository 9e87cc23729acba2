#!/usr/bin/env bash
# Create .venv (if missing) and install gonogo into it. Used by run.sh and test.sh.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test
# Quiet when it works; when an install fails, everything pip said is shown (the log stays in
# .venv/install.log).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
log=.venv/install.log

quietly() { # run "$@" with its output in $log; on failure show all of it and stop
    if ! "$@" >"$log" 2>&1; then
        echo "scripts/bootstrap.sh: this failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

up_to_date() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
stamp=".venv/.installed${extras:+-$extras}"
# an install with the test extras (test.sh's) holds the plain one (run.sh's) too
if up_to_date "$stamp" || { [ -z "$extras" ] && up_to_date .venv/.installed-test; }; then
    exit 0
fi
echo "Installing gonogo${extras:+ with [$extras]} into .venv (once; the log is $log)..." >&2
pip=(.venv/bin/python -m pip --disable-pip-version-check --no-input)
quietly "${pip[@]}" install --upgrade pip
quietly "${pip[@]}" install -e ".${extras:+[$extras]}"
touch "$stamp"
