"""Ack latency of signed slash commands and button clicks: gonogo's real HTTP app versus ack-only Bolt apps.

    python bench/ack_latency.py [--requests 400] [--concurrency 20] [--rounds 5]

Two series, each timed from sending a signed request to receiving the HTTP answer, `requests`
requests with `concurrency` client threads (a fresh connection per request, as Slack's are):

- **slash commands**: `/deploy demo v1` (the first creates a deployment and posts its card,
  the rest are refused as busy and answered ephemerally);
- **button clicks**: `block_actions` ticking and unticking the checklist of that pending card,
  shaped like Slack's payloads (the card's blocks included); gonogo claims each click, applies
  the change compare-and-set and updates the card (coalesced).

against:

- **gonogo**: `gonogo serve --mode http` itself in its own process (uvicorn + Bolt + our
  listeners, SQLite store, the demo config), talking to a fake Slack Web API in a third
  process. Every request really runs after its ack.
- **baseline**: a Bolt app whose only listener calls `ack()`, served by the same stack
  (uvicorn + gonogo's ASGI handler), with Bolt's default settings.
- **baseline (inline)**: the same with `process_before_response=True` (no listener thread, no
  ack polling) — the fastest a Bolt app can answer, and the stricter comparison.

Rounds alternate between the apps in short turns (`--block` requests per app, the order
rotating every turn, so a burst of outside load on a shared machine hits every app alike), and
every sample is kept; before the next app's turn,
gonogo's work after the acks is waited for (every command answered; for clicks, a refused Go
sent after the burst has been answered). Prints a markdown table per series and writes them to
bench/results/ack_latency.md. Target, per series: gonogo's p99 within 1.3x of the faster
baseline's and far inside Slack's 3 s. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
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
from tests.support.slackapi import BOT_TOKEN  # noqa: E402
from tests.support.slacksign import (  # noqa: E402
    SIGNING_SECRET,
    block_actions_payload,
    payload_body,
    signed_headers,
    slash_command_body,
)

TARGET_RATIO = 1.3
SLACK_DEADLINE = 3.0
RESULTS = ROOT / "bench" / "results" / "ack_latency.md"
CHANNEL = "C0DEPLOYS"
REQUESTER = "U0BENCH01"  # who sends the one /deploy that creates the card
Body = Callable[[int, int], str]  # (client thread, request number) -> a signed request's body


# -- the servers, each in its own process ------------------------------------------------------
def fake_slack_main() -> None:
    """Child process: a fake Slack Web API; prints its API URL, runs until killed."""
    from tests.support.slackapi import start_fake_slack

    fake = start_fake_slack()
    print(fake.api_url, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def baseline_main(port: int, api_url: str, inline: bool) -> None:
    """Child process: an ack-only Bolt app under uvicorn with gonogo's ASGI handler."""
    import uvicorn
    from slack_bolt import Ack, App

    from bot.slack import AsgiHandler, make_client

    app = App(
        client=make_client(BOT_TOKEN, api_url),
        signing_secret=SIGNING_SECRET,
        token_verification_enabled=False,
        process_before_response=inline,
    )

    @app.command("/deploy")
    def deploy(ack: Ack) -> None:
        ack()

    @app.block_action(re.compile(".+"))
    def click(ack: Ack) -> None:
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
def deploy_body(i: int, k: int) -> str:
    """A `/deploy demo v1` from client thread `i`'s user."""
    return slash_command_body("/deploy", "demo v1", user=f"U0USER{i:03d}", channel=CHANNEL)


def card_of(api_url: str) -> dict[str, object]:
    """The pending demo card as the fake Web API holds it (ts and blocks)."""
    with urllib.request.urlopen(api_url.removesuffix("/api/") + "/messages", timeout=5) as resp:
        messages = json.loads(resp.read())["messages"]
    cards = [m for m in messages if "checklist:" in json.dumps(m["blocks"])]
    if not cards:
        raise SystemExit("gonogo posted no card with a checklist")
    return dict(cards[0])


def click_bodies(card: dict[str, object]) -> Body:
    """Checklist clicks on `card`: client i's request k ticks or unticks item 1 or 2.

    A tick selects the item on the card as posted (nothing ticked); an untick deselects it on
    the card showing it ticked. Ticks and unticks of an item arrive mixed, so most clicks
    really change the stored checklist (a store write, an event, a card update). Each carries a
    fresh `action_ts`, so none is a duplicate.
    """
    blocks = list(card["blocks"])  # type: ignore[call-overload]
    index, block = next(
        (n, b) for n, b in enumerate(blocks) if str(b.get("block_id", "")).startswith("checklist:")
    )
    options = block["accessory"]["options"]
    shown = {}
    for item in (1, 2):
        ticked = json.loads(json.dumps(blocks))
        ticked[index]["accessory"]["initial_options"] = [options[item - 1]]
        shown[item] = ticked

    def body(i: int, k: int) -> str:
        item, untick = 1 + k % 2, (i + k // 2) % 2 == 1  # at any moment, half tick and half untick
        payload = block_actions_payload(
            action_id="checklist",
            user=f"U0USER{i:03d}",
            channel=CHANNEL,
            message_ts=str(card["ts"]),
            block_id=str(block["block_id"]),
            action_ts=f"{time.time():.6f}{i:03d}{k:05d}",
            selected=[] if untick else [str(item)],
            message_blocks=shown[item] if untick else blocks,
        )
        return payload_body(payload)

    return body


def refused_go_body(card: dict[str, object]) -> str:
    """A Go by the requester (refused, answered ephemerally): sent last, it marks the end of a burst's work."""
    blocks = list(card["blocks"])  # type: ignore[call-overload]
    actions = next(b for b in blocks if b.get("type") == "actions")
    go = next(e for e in actions["elements"] if e["action_id"] == "go")
    payload = block_actions_payload(
        action_id="go",
        value=go["value"],
        user=REQUESTER,
        channel=CHANNEL,
        message_ts=str(card["ts"]),
        block_id=actions["block_id"],
        message_blocks=blocks,
    )
    return payload_body(payload)


def one_request(port: int, body: str) -> float:
    """Send one signed request; seconds until the answer arrived (the body is read)."""
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


def load(port: int, requests: int, concurrency: int, make: Body) -> list[float]:
    """`requests` requests (bodies from `make`) from `concurrency` threads at once; every latency (s)."""
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
            for k in range(n):
                mine.append(one_request(port, make(i, k)))
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
    p.add_argument(
        "--block",
        type=int,
        default=100,
        help="requests per app turn within a round (apps rotate every block)",
    )
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
            "gonogo": lambda: Child(
                ["-m", "bot.app.cli", "serve", "--mode", "http", "--config", str(config)], env
            ),
            "baseline": lambda: Child([me, "--child", "default", str(ports["baseline"]), api_url]),
            "baseline (inline)": lambda: Child(
                [me, "--child", "inline", str(ports["baseline (inline)"]), api_url]
            ),
        }
        sent = 0  # requests sent to gonogo that each get exactly one reply (card or ephemeral)
        for name, start in starts.items():
            child = start()
            children.append(child)
            wait_listening(ports[name], child)
            if name == "gonogo":  # the card the clicks act on, requested by one user
                one_request(
                    ports[name], slash_command_body("/deploy", "demo v1", user=REQUESTER, channel=CHANNEL)
                )
                sent += 1
                wait_replies(api_url, sent)
            load(
                ports[name], args.concurrency, args.concurrency, deploy_body
            )  # warm up (imports, auth.test, SQLite)
        sent += args.concurrency
        card = card_of(api_url)
        clicks = click_bodies(card)
        for name in starts:
            load(ports[name], args.concurrency, args.concurrency, clicks)  # warm up the click path
        samples: dict[str, dict[str, list[float]]] = {s: {name: [] for name in starts} for s in SERIES}
        drained: dict[str, list[float]] = {s: [] for s in SERIES}
        blocks = [args.block] * (args.requests // args.block) + (
            [args.requests % args.block] if args.requests % args.block else []
        )
        names = list(starts)
        for rnd in range(args.rounds):
            for series, make in (("commands", deploy_body), ("clicks", clicks)):
                for b, size in enumerate(blocks):  # short turns, rotating: outside load hits every app alike
                    turn = (rnd + b) % len(names)
                    for name in names[turn:] + names[:turn]:
                        samples[series][name].extend(load(ports[name], size, args.concurrency, make))
                        if name != "gonogo":
                            continue
                        if series == "commands":
                            sent += size
                        else:  # clicks get no reply: a refused Go, sent last, is answered after them
                            one_request(ports[name], refused_go_body(card))
                            sent += 1
                        drained[series].append(wait_replies(api_url, sent))
        updates = card_updates(api_url)
    finally:
        for child in reversed(children):
            child.stop()
        stop_demo_app(tmp / "data")

    ok = True
    tables = []
    for series, title, work in (
        (
            "commands",
            "Slash-command ack latency (`/deploy`)",
            "every command answered: card or ephemeral reply",
        ),
        (
            "clicks",
            "Button-click ack latency (checklist ticks on a pending card)",
            "every click applied; a refused Go sent after the burst answered",
        ),
    ):
        table, met = report(title, samples[series], args)
        ok = ok and met
        tables.append(
            table
            + f"\ngonogo's work after the acks ({work}) was done {max(drained[series]) * 1000:.0f} ms at most "
            "after the last ack of a burst."
        )
    text = "\n\n".join(
        [
            *tables,
            f"gonogo = `gonogo serve --mode http` (uvicorn, Bolt, SQLite, demo config) really handling each "
            f"request after the ack (the clicks led to {updates} coalesced `chat.update` calls of the card); "
            "baselines = Bolt apps whose listeners only call `ack()`, on the same uvicorn + ASGI stack "
            "(`baseline` with Bolt's defaults, `inline` with process_before_response=True as gonogo). Every "
            f"server runs in its own process; the client is {args.concurrency} threads, one new connection "
            f"per request. Rounds alternate apps and series. Machine: {os.cpu_count()} cores, Python "
            f"{sys.version.split()[0]}; 1-min load average {load_before:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after the run (a shared machine's other work shows in the tails: "
            "compare runs at similar load).",
        ]
    )
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    return 0 if ok else 1


SERIES = ("commands", "clicks")


def card_updates(api_url: str) -> int:
    """How many `chat.update` calls gonogo made (card updates)."""
    with urllib.request.urlopen(api_url.removesuffix("/api/") + "/calls", timeout=5) as resp:
        return int(json.loads(resp.read())["calls"].get("chat.update", 0))


def report(title: str, samples: dict[str, list[float]], args: argparse.Namespace) -> tuple[str, bool]:
    """A markdown table of one series, and whether gonogo met its targets."""
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
            f"## {title}: {args.concurrency} concurrent clients, "
            f"{args.rounds} rounds of {args.requests} requests per app in rotating turns of {args.block}",
            "",
            "| app | requests | p50 | p99 | max | p50 vs best baseline | p99 vs best baseline |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"gonogo p99 / best baseline p99 = {ratio:.2f}x (target <= {TARGET_RATIO}x: "
            f"{'ok' if ratio <= TARGET_RATIO else 'missed'}); Slack's deadline is {SLACK_DEADLINE * 1000:.0f} ms.",
        ]
    )
    return table, ok


if __name__ == "__main__":
    sys.exit(main())
