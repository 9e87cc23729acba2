#!/bin/sh
# Restart the demo app from a release directory: stop the old process, start the new one,
# wait until it answers. Usage: restart.sh <app dir> <port> <state dir>
set -eu
app="$1"; port="$2"; state="$3"
pidfile="$state/app.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    i=0; while kill -0 "$(cat "$pidfile")" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
fi
cd "$app"
nohup python3 "$app/server.py" --port "$port" >"$state/app.log" 2>&1 &
echo $! >"$pidfile"
i=0
while [ $i -lt 100 ]; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "demo app exited at start:" >&2
        tail -n 3 "$state/app.log" >&2 || true
        exit 1
    fi
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; then
        echo "demo app $(cat "$app/VERSION") listening on 127.0.0.1:$port (pid $(cat "$pidfile"))"
        exit 0
    fi
    sleep 0.1; i=$((i+1))
done
echo "demo app did not start on port $port" >&2
cat "$state/app.log" >&2 || true
exit 1
