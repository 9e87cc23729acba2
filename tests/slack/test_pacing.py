"""Slack's rate limits with many deploys at once: thread lines past a channel's budget wait and
go out merged per thread, nothing lost, in order; chat.update stays within its tier."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.slack import SlackChat, make_client
from bot.slack.pacing import ThreadBatches, TokenBucket
from tests.support.slackapi import BOT_TOKEN, FakeSlack, start_fake_slack, stop_fake_slack


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait() == pytest.approx(1.0)
    clock.now = 1.0
    assert bucket.take() and not bucket.take()
    assert bucket.take(force=True)  # a card cannot wait: it spends what there is, no debt
    clock.now = 2.0
    assert bucket.take()


def test_held_thread_lines_go_out_merged_per_thread_in_order() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    sent: list[tuple[str, str]] = []
    done = threading.Event()

    def send(channel: str, ts: str, text: str, deployment_id: int | None) -> None:
        sent.append((ts, text))
        if len(sent) == 4:
            done.set()

    batches = ThreadBatches(lambda channel: bucket, send)
    try:
        for i in range(6):
            batches.post("C1", "t1" if i % 2 == 0 else "t2", f"line {i}", None)
        assert sent == [("t1", "line 0"), ("t2", "line 1")]  # the burst; the rest waits
        assert batches.held() == 4
        clock.now = 5.0  # budget again: one message per thread, oldest thread first
        assert done.wait(5)
        assert sent[2:] == [("t1", "line 2\nline 4"), ("t2", "line 3\nline 5")]
    finally:
        batches.close()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = start_fake_slack()
    yield server
    stop_fake_slack(server)


def test_many_thread_lines_in_one_channel_stay_within_its_budget_and_all_arrive(fake: FakeSlack) -> None:
    chat = SlackChat(make_client(BOT_TOKEN, fake.api_url))
    try:
        cards = [chat.post_message("C0DEPLOYS", f"deploy {i}") for i in range(5)]
        for step in range(6):  # 5 deploys, 6 steps each, in one channel, within a moment
            for ref in cards:
                assert ref is not None
                chat.post_thread(ref, f"✓ deploy › step {step}")
        posted = len(fake.ok_calls("chat.postMessage")) - 5
        assert posted < 30  # not one message per line
        assert chat.flush()
        for ref in cards:  # every line arrived, in order, under its own card
            assert ref is not None
            lines = "\n".join(fake.thread(ref.ts)).splitlines()
            assert lines == [f"✓ deploy › step {s}" for s in range(6)]
    finally:
        chat.close()
