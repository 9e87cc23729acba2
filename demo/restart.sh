#!/bin/sh
# Restart the demo app from a release directory: stop the old process, start the new one, and
# succeed only when *the new process* owns the port: it prints "listening on ... (pid N)" once
# bound and must still be alive. Something else answering on the port is not success.
# Usage: restart.sh <app dir> <port> <state dir>
set -eu
app="$1"; port="$2"; state="$3"
pidfile="$state/app.pid"
log="$state/app.log"

ours() { # is pid $1 alive and running a demo server.py (not a recycled pid)?
    kill -0 "$1" 2>/dev/null && ps -ww -p "$1" -o args= 2>/dev/null | grep -q "server\.py"
}
port_in_use() {
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(0 if s.connect_ex(('127.0.0.1', $port)) == 0 else 1)" 2>/dev/null
}
fail() {
    echo "$1" >&2
    if port_in_use; then
        echo "port $port is taken by another process (not the demo app gonogo started); stop it or set another port" >&2
    fi
    echo "--- last lines of $log:" >&2
    tail -n 5 "$log" >&2 || true
    exit 1
}

if [ -f "$pidfile" ]; then
    old="$(cat "$pidfile")"
    if ours "$old"; then
        kill "$old" 2>/dev/null || true
        # (a zombie waiting for init to reap it is no longer "ours": its args are gone)
        i=0; while ours "$old" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    fi
fi
# The repo's own virtualenv when there is one (it has prometheus_client, for /metrics), else python3.
python="$(cd "$(dirname "$0")" && pwd -P)/../.venv/bin/python"
[ -x "$python" ] || python=python3
cd "$app"
nohup "$python" "$app/server.py" --port "$port" >"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
i=0
while [ $i -lt 100 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        fail "demo app exited at start (pid $pid)"
    fi
    if grep -q "(pid $pid)" "$log" 2>/dev/null; then
        sleep 0.1
        kill -0 "$pid" 2>/dev/null || fail "demo app (pid $pid) died right after binding port $port"
        echo "demo app $(cat "$app/VERSION" 2>/dev/null || echo '?') listening on 127.0.0.1:$port (pid $pid)"
        exit 0
    fi
    sleep 0.1; i=$((i+1))
done
fail "demo app (pid $pid) did not bind port $port within 10s"
