"""The demo application gonogo deploys: a tiny HTTP server reporting its release.

GET /health -> 200 {"status": "ok", "version": ...}; GET /version -> the VERSION file.
A file named UNHEALTHY next to this script makes /health answer 503 (to demo a failing check).

Once it has bound its port it prints `listening on 127.0.0.1:PORT (pid N)`, which is how
`demo/restart.sh` knows that *this* process, not another one, owns the port. A port already
taken is one clear line on stderr and exit status 3.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name: str, default: str = "") -> str:
    try:
        with open(os.path.join(HERE, name)) as fh:
            return fh.read().strip()
    except OSError:
        return default


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        version = read("VERSION", "unknown")
        if self.path == "/health":
            healthy = not os.path.exists(os.path.join(HERE, "UNHEALTHY"))
            body = json.dumps({"status": "ok" if healthy else "failing", "version": version}).encode()
            self.send_response(200 if healthy else 503)
        elif self.path == "/version":
            body = version.encode()
            self.send_response(200)
        else:
            body = b"demo app\n"
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as exc:
        print(f"demo app: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    print(f"listening on 127.0.0.1:{args.port} (pid {os.getpid()})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
