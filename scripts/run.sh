#!/usr/bin/env bash
# Set up and run the bot. With no Slack tokens in the environment it opens the terminal chat
# against the bundled demo environment (SQLite under ./var). Extra arguments go to `gonogo run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
config="${GONOGO_CONFIG:-config.example.toml}"
if [ "$config" = config.example.toml ]; then
    .venv/bin/python demo/history.py --config "$config"   # the demo's git history, once
fi
exec .venv/bin/gonogo run --config "$config" "$@"
