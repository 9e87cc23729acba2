#!/bin/sh
# Stop the demo app that restart.sh started from this state dir, and wait until it is gone (so
# its port is free at once). The terminal chat runs this when it quits (the demo's `stop` steps).
# Never kills a process that is not the demo app (a stale pid file, the pid reused).
# Usage: stop.sh <state dir>
set -eu
state="$1"
pidfile="$state/app.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"

ours() { # is pid $1 alive and running a demo server.py?
    kill -0 "$1" 2>/dev/null && ps -ww -p "$1" -o args= 2>/dev/null | grep -q "server\.py"
}

if ours "$pid"; then
    kill "$pid" 2>/dev/null || true
    i=0; while ours "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    if ours "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
        sleep 0.1
    fi
    echo "stopped the demo app ($(cat "$state/current/VERSION" 2>/dev/null || echo 'release unknown'))"
fi
rm -f "$pidfile"
