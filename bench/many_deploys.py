"""Many deploys at once on one bot: 20 environments of 10 SSH hosts each, deploying together,
while commands and clicks keep arriving; ack latency against the idle bot, Slack call rates.

    python bench/many_deploys.py [--envs 20] [--hosts 10] [--requests 200] [--rounds 2]

One `gonogo serve --mode http` (SQLite, `bot.workers` = envs) with a fake Slack Web API in its own
process (every call recorded with its channel and time); `--envs` environments whose hosts are
loopback sshd (one sshd per environment, `--hosts` host entries on it), each deploy 4 steps over
SSH. In order:

1. one deploy alone: its duration is the baseline;
2. the idle bot: `--rounds` rounds of `--requests` signed `/deploy` commands and checklist clicks
   (20 concurrent clients, as bench/ack_latency.py);
3. every environment's deploy requested and approved at once (signed commands, then Go clicks),
   and the same rounds of commands and clicks while they run.

Reports: how long each deploy waited between its Go and its start and how long it ran, against
the solo deploy (nothing may wait beyond `bot.workers`); the ack p50/p99 under load against the
idle bot's (goal <= 1.3x); Slack calls per channel per second (chat.postMessage: about 1 per
second per channel with short bursts; chat.update: Tier 3, about 50 a minute), and how many card
versions the deploys stored against the `chat.update` calls that carried them (coalescing).
Writes bench/results/many_deploys.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ack_latency import Child, card_of, click_bodies, load, one_request, pct, wait_listening  # noqa: E402

from bot.store.sqlite import SqliteStore  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.support.slackapi import BOT_TOKEN  # noqa: E402
from tests.support.slacksign import (  # noqa: E402
    SIGNING_SECRET,
    block_actions_payload,
    payload_body,
    slash_command_body,
)
from tests.support.sshd import SSHFleet, start_fleet  # noqa: E402

CHANNEL = "C0DEPLOYS"
RESULTS = ROOT / "bench" / "results"
STEPS = ("prepare", "ship", "switch", "health")


def config_text(fleet: SSHFleet, data: Path, envs: int, hosts: int) -> str:
    head = f"""[bot]
data_dir = "{data}"
workers = {envs}
[ssh]
user = "{fleet.user}"
identity_file = "{fleet.key}"
known_hosts = "{fleet.known_hosts}"
ssh_config = "{fleet.root / "ssh_config"}"
[environments.acks]
backend = "local"
hosts = ["a1"]
checklist = ["Tested on staging", "Changelog read"]
[[environments.acks.steps.deploy]]
name = "ship"
run = "true"
"""
    out = [head]
    for i in range(envs):
        port = fleet.servers[i].port
        entries = ", ".join(
            f'{{ name = "e{i}h{j}", address = "127.0.0.1", port = {port} }}' for j in range(hosts)
        )
        out.append(f'[environments.e{i}]\nbackend = "ssh"\nhosts = [{entries}]\n')
        out.append(f"[environments.e{i}.strategy]\nmax_parallel = {hosts}\n")
        for step, run in zip(
            STEPS, ("mkdir -p /tmp/gonogo-conc/{host}; sleep 1", "sleep 2", "true", "sleep 1"), strict=True
        ):
            out.append(f'[[environments.e{i}.steps.deploy]]\nname = "{step}"\nrun = "{run}"\n')
    return "".join(out)


def get(api_url: str, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(api_url.removesuffix("/api/") + path, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def cards(api_url: str) -> list[dict]:  # type: ignore[type-arg]
    return list(get(api_url, "/messages")["messages"])


def go_body(card: dict, user: str) -> str:  # type: ignore[type-arg]
    actions = next(b for b in card["blocks"] if b.get("type") == "actions")
    go = next(e for e in actions["elements"] if e["action_id"] == "go")
    payload = block_actions_payload(
        action_id="go", value=go["value"], user=user, channel=CHANNEL, message_ts=str(card["ts"]),
        block_id=actions["block_id"], message_blocks=card["blocks"],
    )  # fmt: skip
    return payload_body(payload)


def deploy(port: int, api_url: str, envs: list[str], ref: str) -> None:
    """Request a deploy of `ref` in every env, then press Go on every card, all at once."""
    before = {c["ts"] for c in cards(api_url)}
    threads = [
        threading.Thread(target=one_request, args=(port, slash_command_body("/deploy", f"{e} {ref}", user="U0REQ", channel=CHANNEL)))
        for e in envs
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 60
    while len(new := [c for c in cards(api_url) if c["ts"] not in before]) < len(envs):
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(new)} cards of {len(envs)}")
        time.sleep(0.05)
    threads = [threading.Thread(target=one_request, args=(port, go_body(c, "U0APPROVER"))) for c in new]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def acks(port: int, clicks, args: argparse.Namespace) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    def command(i: int, k: int) -> str:
        return slash_command_body("/deploy", "acks v1", user=f"U0USER{i:03d}", channel=CHANNEL)

    out: dict[str, list[float]] = {"commands": [], "clicks": []}
    for _ in range(args.rounds):
        out["commands"] += load(port, args.requests, 20, command)
        out["clicks"] += load(port, args.requests, 20, clicks)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="gonogo-conc-"))
    fleet = start_fleet(args.envs, work / "fleet", reexec=False)
    me = str(ROOT / "bench" / "ack_latency.py")
    fake = Child([me, "--child", "fake"], read_line=True)
    server: Child | None = None
    envs = [f"e{i}" for i in range(args.envs)]
    try:
        api_url = fake.line
        config = work / "gonogo.toml"
        config.write_text(config_text(fleet, work / "data", args.envs, args.hosts))
        port = free_port()
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": api_url,
               "PORT": str(port), "HOST": "127.0.0.1"}  # fmt: skip
        server = Child(["-m", "bot.app.cli", "serve", "--mode", "http", "--config", str(config)], env)
        wait_listening(port, server)
        one_request(port, slash_command_body("/deploy", "acks v1", user="U0REQ", channel=CHANNEL))
        time.sleep(1)
        clicks = click_bodies(card_of(api_url))
        store = SqliteStore(work / "data" / "gonogo.db")

        def done(ref: str, names: list[str]) -> bool:
            rows = [d for e in names for d in store.deployments(e, limit=1) if d.ref == ref]
            return len(rows) == len(names) and all(d.finished_at is not None for d in rows)

        deploy(port, api_url, envs[:1], "v1")  # 1. alone
        while not done("v1", envs[:1]):
            time.sleep(0.1)
        idle = acks(port, clicks, args)  # 2. idle
        mark = len(get(api_url, "/calls/log")["calls"])
        deploy(port, api_url, envs, "v2")  # 3. all at once, and the same load meanwhile
        busy = acks(port, clicks, args)
        busy_until = time.monotonic()
        while not done("v2", envs):
            time.sleep(0.1)
        finished = time.monotonic()
        settled, last = time.monotonic(), -1  # held thread lines still go out, within budget
        while time.monotonic() - settled < 3 and time.monotonic() - finished < 120:
            count = len(get(api_url, "/calls/log")["calls"])
            settled, last = (settled, last) if count == last else (time.monotonic(), count)
            time.sleep(0.2)
        calls = get(api_url, "/calls/log")["calls"][mark:]
        solo = store.deployments("e0", limit=2)[1]
        together = [store.deployments(e, limit=1)[0] for e in envs]
        approved = {
            d.id: max(ev.at for ev in store.events(deployment_id=d.id) if ev.action == "approve")
            for d in together
        }
        versions = sum(d.version for d in together)
    finally:
        if server is not None:
            server.stop()
        fake.stop()
        fleet.stop()
    text = report(args, solo, together, approved, idle, busy, calls, versions, load_before, busy_until)
    print(text)
    (RESULTS / "many_deploys.md").write_text(text)
    return 0


def report(args, solo, together, approved, idle, busy, calls, versions, load_before, busy_until) -> str:  # type: ignore[no-untyped-def]
    solo_s = (solo.finished_at - solo.started_at).total_seconds()
    waits = [(d.started_at - approved[d.id]).total_seconds() for d in together]
    runs = [(d.finished_at - d.started_at).total_seconds() for d in together]
    ok = sum(1 for d in together if d.state.value == "succeeded")
    lines = [
        f"## {args.envs} deploys at once on one bot ({args.hosts} SSH hosts each, 4 steps, `bot.workers = {args.envs}`)",
        "",
        f"- succeeded: {ok}/{args.envs}",
        f"- Go to start: median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms "
        "(no deploy waited for a worker)",
        f"- run time: median {statistics.median(runs):.2f} s, max {max(runs):.2f} s; alone {solo_s:.2f} s "
        f"(median {statistics.median(runs) / solo_s:.2f}x, max {max(runs) / solo_s:.2f}x the solo deploy: the other "
        f"{args.envs - 1} deploys' hosts share the handshake bound of direct connections and the machine)",
        "",
        "| series | idle p50 | idle p99 | during the deploys p50 | during p99 | p99 ratio (goal <= 1.3x) |",
        "|---|---|---|---|---|---|",
    ]
    for series in ("commands", "clicks"):
        i99, b99 = pct(idle[series], 0.99), pct(busy[series], 0.99)
        lines.append(
            f"| {series} | {pct(idle[series], 0.5):.1f} ms | {i99:.1f} ms | {pct(busy[series], 0.5):.1f} ms "
            f"| {b99:.1f} ms | {b99 / i99:.2f}x {'ok' if b99 / i99 <= 1.3 else '**missed**'} |"
        )
    per = collections.Counter((c["method"], c["channel"], int(c["at"])) for c in calls)
    threads = [c for c in calls if c["method"] == "chat.postMessage"]
    span = (max(c["at"] for c in threads) - min(c["at"] for c in threads)) if threads else 0.0
    lines += [
        "",
        "| Slack method (deploy phase) | calls | busiest second in one channel | Slack's limit |",
        "|---|---|---|---|",
    ]
    limits = {"chat.postMessage": "about 1/s per channel, short bursts", "chat.update": "Tier 3: about 50/min",
              "chat.postEphemeral": "Tier 4 (100+/min)"}  # fmt: skip
    for method in sorted({c["method"] for c in calls}):
        n = sum(1 for c in calls if c["method"] == method)
        worst = max((v for (m, _, _), v in per.items() if m == method), default=0)
        lines.append(f"| {method} | {n} | {worst} | {limits.get(method, '-')} |")
    updates = sum(1 for c in calls if c["method"] == "chat.update")
    lines += [
        "",
        f"chat.postMessage in the deploy phase: {len(threads)} over {span:.0f} s ({len(threads) / max(span, 1):.2f}/s in "
        f"the channel): the {args.envs} cards at once (never held: they are the answer to the commands), then the "
        "thread lines within the channel's budget, merged per thread. chat.postEphemeral is the bench's own "
        "commands answered (one reply each; Tier 4 is per workspace).",
        "",
        f"Coalescing: the {args.envs} deploys stored {versions} versions of their records (each a possible card "
        f"refresh); {updates} `chat.update` calls carried them (the acks card's updates included).",
        "",
        f"Acks: {args.rounds} rounds of {args.requests} commands (`/deploy acks v1`, refused as busy) and checklist "
        "clicks each, 20 concurrent clients, fresh connections; the same against the idle bot first. Machine: "
        f"{os.cpu_count()} cores (bot, {args.envs} sshd, the fake Slack and the clients share them), Python "
        f"{sys.version.split()[0]}; 1-minute load {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
