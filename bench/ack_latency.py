"""Ack latency of signed slash commands: gonogo's real HTTP app versus ack-only Bolt apps.

    python bench/ack_latency.py [--requests 400] [--concurrency 20] [--rounds 5]

Times, from sending a signed `/deploy demo v1` to receiving the HTTP answer, `requests` requests
with `concurrency` client threads (a fresh connection per request, as Slack's are), against:

- **gonogo**: `gonogo serve` itself in its own process (uvicorn + Bolt + our listeners, SQLite
  store, the demo config), talking to a fake Slack Web API in a third process. Every request
  really runs: after the ack the command is handled (the first creates a deployment and posts
  its card, the rest are refused as busy and answered ephemerally).
- **baseline**: a Bolt app whose only listener calls `ack()`, served by the same stack
  (uvicorn + gonogo's ASGI handler), with Bolt's default settings.
- **baseline (inline)**: the same with `process_before_response=True` (no listener thread, no
  ack polling) — the fastest a Bolt app can answer, and the stricter comparison.

Rounds alternate between the apps, and every sample is kept. Prints a markdown table and
writes it to bench/results/ack_latency.md. Target: gonogo's p99 within 1.3x of the faster
baseline's and far inside Slack's 3 s. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port, stop_demo_app, write_demo_config  # noqa: E402
from tests.slackapi import BOT_TOKEN  # noqa: E402
from tests.slacksign import SIGNING_SECRET, signed_headers, slash_command_body  # noqa: E402

TARGET_RATIO = 1.3
SLACK_DEADLINE = 3.0
RESULTS = ROOT / "bench" / "results" / "ack_latency.md"


# -- the servers, each in its own process ------------------------------------------------------
def fake_slack_main() -> None:
    """Child process: a fake Slack Web API; prints its API URL, runs until killed."""
    from tests.slackapi import start_fake_slack

    fake = start_fake_slack()
    print(fake.api_url, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def baseline_main(port: int, api_url: str, inline: bool) -> None:
    """Child process: an ack-only Bolt app under uvicorn with gonogo's ASGI handler."""
    import uvicorn
    from slack_bolt import Ack, App

    from bot.slack.app import AsgiHandler
    from bot.slack.chat import make_client

    app = App(
        client=make_client(BOT_TOKEN, api_url),
        signing_secret=SIGNING_SECRET,
        token_verification_enabled=False,
        process_before_response=inline,
    )

    @app.command("/deploy")
    def deploy(ack: Ack) -> None:
        ack()

    config = uvicorn.Config(
        AsgiHandler(app), host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    uvicorn.Server(config).run()


class Child:
    """A server process, killed on exit."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, *, read_line: bool = False
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}, **(env or {})},
            stdout=subprocess.PIPE if read_line else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.line = ""
        if read_line:
            assert self.proc.stdout is not None
            self.line = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        """SIGTERM, then kill if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_listening(port: int, child: Child, timeout: float = 30) -> None:
    """Poll until something accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while True:
        if child.proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {child.proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/livez")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on port {port}") from None
            time.sleep(0.05)


# -- the client ----------------------------------------------------------------------------------
def one_request(port: int, user: str) -> float:
    """Send one signed /deploy; seconds until the answer arrived (the body is read)."""
    body = slash_command_body("/deploy", "demo v1", user=user, channel="C0DEPLOYS")
    headers = signed_headers(body)
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        resp = conn.getresponse()
        resp.read()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status} from port {port}")
    return elapsed


def load(port: int, requests: int, concurrency: int) -> list[float]:
    """`requests` requests from `concurrency` threads at once; every latency (s)."""
    samples: list[float] = []
    lock = threading.Lock()
    per_thread = [
        requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)
    ]
    start = threading.Barrier(concurrency)
    errors: list[BaseException] = []

    def worker(i: int, n: int) -> None:
        start.wait()
        mine = []
        try:
            for _ in range(n):
                mine.append(one_request(port, f"U0USER{i:03d}"))
        except BaseException as exc:
            errors.append(exc)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate(per_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return samples


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) in milliseconds."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1000


def replies(api_url: str) -> int:
    """How many replies gonogo has sent so far (card posts and ephemeral answers)."""
    with urllib.request.urlopen(api_url.removesuffix("/api/") + "/calls", timeout=5) as resp:
        calls = json.loads(resp.read())["calls"]
    return int(calls.get("chat.postEphemeral", 0)) + int(calls.get("chat.postMessage", 0))


def replies_expected(samples: dict[str, list[float]], args: argparse.Namespace) -> int:
    """Every /deploy sent to gonogo so far (the warm-up included) gets exactly one reply."""
    return len(samples["gonogo"]) + args.concurrency


def wait_replies(api_url: str, expected: int, timeout: float = 60) -> float:
    """Seconds from the end of a burst until gonogo has answered every command in it."""
    started = time.perf_counter()
    while replies(api_url) < expected:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"gonogo sent {replies(api_url)} of {expected} replies")
        time.sleep(0.01)
    return time.perf_counter() - started


# -- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when gonogo meets its targets."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=400, help="measured requests per app per round")
    p.add_argument("--concurrency", type=int, default=20, help="client threads")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per app")
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "fake":
            fake_slack_main()
        else:
            baseline_main(int(rest[0]), rest[1], inline=kind == "inline")
        return 0

    load_before = os.getloadavg()[0]
    me = str(Path(__file__).resolve())
    children: list[Child] = []
    tmp = Path(tempfile.mkdtemp(prefix="gonogo-ack-"))
    try:
        fake = Child([me, "--child", "fake"], read_line=True)
        children.append(fake)
        api_url = fake.line
        ports = {"gonogo": free_port(), "baseline": free_port(), "baseline (inline)": free_port()}
        config = write_demo_config(tmp)
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": api_url,
            "PORT": str(ports["gonogo"]),
            "HOST": "127.0.0.1",
        }
        starts: dict[str, Callable[[], Child]] = {
            "gonogo": lambda: Child(["-m", "bot.cli", "serve", "--config", str(config)], env),
            "baseline": lambda: Child([me, "--child", "default", str(ports["baseline"]), api_url]),
            "baseline (inline)": lambda: Child(
                [me, "--child", "inline", str(ports["baseline (inline)"]), api_url]
            ),
        }
        for name, start in starts.items():
            child = start()
            children.append(child)
            wait_listening(ports[name], child)
            load(ports[name], args.concurrency, args.concurrency)  # warm up (imports, auth.test, SQLite)
        samples: dict[str, list[float]] = {name: [] for name in starts}
        drained: list[float] = []
        for _ in range(args.rounds):
            for name in starts:
                samples[name].extend(load(ports[name], args.requests, args.concurrency))
                if name == "gonogo":
                    drained.append(wait_replies(api_url, replies_expected(samples, args)))
    finally:
        for child in reversed(children):
            child.stop()
        stop_demo_app(tmp / "data")

    base_p99 = min(pct(samples["baseline"], 0.99), pct(samples["baseline (inline)"], 0.99))
    base_p50 = min(pct(samples["baseline"], 0.50), pct(samples["baseline (inline)"], 0.50))
    rows = []
    for name, got in samples.items():
        rows.append(
            f"| {name} | {len(got)} | {pct(got, 0.5):.1f} ms | {pct(got, 0.99):.1f} ms | "
            f"{max(got) * 1000:.1f} ms | {pct(got, 0.5) / base_p50:.2f}x | {pct(got, 0.99) / base_p99:.2f}x |"
        )
    ratio = pct(samples["gonogo"], 0.99) / base_p99
    ok = ratio <= TARGET_RATIO and pct(samples["gonogo"], 0.99) < SLACK_DEADLINE * 1000
    table = "\n".join(
        [
            f"## Slash-command ack latency ({args.concurrency} concurrent clients, "
            f"{args.rounds} alternating rounds of {args.requests} requests per app)",
            "",
            "| app | requests | p50 | p99 | max | p50 vs best baseline | p99 vs best baseline |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"gonogo p99 / best baseline p99 = {ratio:.2f}x (target <= {TARGET_RATIO}x: "
            f"{'ok' if ratio <= TARGET_RATIO else 'missed'}); Slack's deadline is {SLACK_DEADLINE * 1000:.0f} ms.",
            f"gonogo's work after the acks (every command answered: card or ephemeral reply) was done "
            f"{max(drained) * 1000:.0f} ms at most after the last ack of a burst.",
            "",
            "gonogo = `gonogo serve` (uvicorn, Bolt, SQLite, demo config) really handling each command "
            "after the ack; baselines = Bolt apps whose listener only calls `ack()`, on the same "
            "uvicorn + ASGI stack (`baseline` with Bolt's defaults, `inline` with "
            "process_before_response=True as gonogo). Every server runs in its own process; the "
            f"client is {args.concurrency} threads, one new connection per request. "
            f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; 1-min load average "
            f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run (a shared machine's "
            "other work shows in the tails: compare runs at similar load).",
        ]
    )
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
