"""Deploy windows and freezes: parsing, decisions, next opening, time zones and DST."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.domain.window_check import WindowDecision, check_window, format_next_open
from bot.domain.windows import Freeze, Window, parse_freeze, parse_window

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # 30-minute DST shifts
UTC_TZ = ZoneInfo("UTC")

OFFICE = parse_window("Mon-Thu 09:00-16:00")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def decide(
    now: datetime,
    windows: str | Sequence[str] = (),
    freezes: Sequence[Freeze] = (),
    tz: ZoneInfo = PARIS,
) -> WindowDecision:
    """Check `now` against windows given as text (one string or several)."""
    texts = [windows] if isinstance(windows, str) else list(windows)
    return check_window(now, [parse_window(t) for t in texts], freezes, tz)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "days", "start", "end", "canonical"),
    [
        ("Mon-Thu 09:00-16:00", {0, 1, 2, 3}, time(9), time(16), "Mon-Thu 09:00-16:00"),
        ("Mon,Wed,Fri 10:00-12:00", {0, 2, 4}, time(10), time(12), "Mon,Wed,Fri 10:00-12:00"),
        ("Sat-Mon 00:00-06:00", {5, 6, 0}, time(0), time(6), "Sat-Mon 00:00-06:00"),
        ("daily 22:00-06:00", set(range(7)), time(22), time(6), "daily 22:00-06:00"),
        ("weekdays 09:00-17:00", {0, 1, 2, 3, 4}, time(9), time(17), "weekdays 09:00-17:00"),
        ("weekends 10:00-14:30", {5, 6}, time(10), time(14, 30), "weekends 10:00-14:30"),
        ("MONDAY-wednesday 9:05-11:00", {0, 1, 2}, time(9, 5), time(11), "Mon-Wed 09:05-11:00"),
        ("  mon , Tuesday   08:00 - 10:00 ", {0, 1}, time(8), time(10), "Mon-Tue 08:00-10:00"),
        ("Fri 22:00-02:00", {4}, time(22), time(2), "Fri 22:00-02:00"),
        ("Mon-Fri 09:00-17:00", {0, 1, 2, 3, 4}, time(9), time(17), "weekdays 09:00-17:00"),
        ("Mon-Sun 00:00-00:00", set(range(7)), time(0), time(0), "daily 00:00-00:00"),
        ("Sun-Sat 08:00-09:00", set(range(7)), time(8), time(9), "daily 08:00-09:00"),
        ("Thu 18:00-24:00", {3}, time(18), time(0), "Thu 18:00-00:00"),
        ("Mon,Tue,Thu,Sat,Sun 09:00-12:00", {0, 1, 3, 5, 6}, time(9), time(12), "Thu,Sat-Tue 09:00-12:00"),
        ("Wed-Wed 09:00-10:00", {2}, time(9), time(10), "Wed 09:00-10:00"),
    ],
)
def test_parse_window(text: str, days: set[int], start: time, end: time, canonical: str) -> None:
    window = parse_window(text)
    assert window == Window(frozenset(days), start, end)
    assert str(window) == canonical
    assert parse_window(str(window)) == window


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty deploy window"),
        ("   ", "empty deploy window"),
        ("Mon-Thu", "invalid deploy window 'Mon-Thu': expected '<days> HH:MM-HH:MM'"),
        ("09:00-16:00", "invalid deploy window '09:00-16:00'"),
        ("Mon-Thu 09:00", "invalid deploy window"),
        ("Mon-Thu 09:00-16:00 please", "invalid deploy window"),
        ("Fro 09:00-16:00", "unknown day 'Fro'"),
        ("Mon-Fry 09:00-16:00", "unknown day 'Fry'"),
        ("Tues 09:00-16:00", "unknown day 'Tues'"),
        ("Mon,,Tue 09:00-16:00", "empty day in deploy window"),
        ("Mon 9-16", "invalid time '9'"),
        ("Mon 09:00-16h", "invalid time '16h'"),
        ("Mon 25:00-26:00", "invalid time '25:00'"),
        ("Mon 09:60-10:00", "invalid time '09:60'"),
        ("Mon 24:00-10:00", "invalid time '24:00'"),
        ("Mon 09:00-24:30", "invalid time '24:30'"),
    ],
)
def test_parse_window_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_window(text)


def test_window_validation() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        Window(frozenset(), time(9), time(10))
    with pytest.raises(ValueError, match="0 \\(Mon\\) to 6 \\(Sun\\)"):
        Window(frozenset({7}), time(9), time(10))
    with pytest.raises(ValueError, match="wall-clock"):
        Window(frozenset({1}), time(9, tzinfo=UTC), time(10))


@given(
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_str_round_trips(days: frozenset[int], start: time, end: time) -> None:
    window = Window(days, start, end)
    assert parse_window(str(window)) == window


# --------------------------------------------------------------------------- freezes


def test_parse_freeze_dates_are_inclusive() -> None:
    freeze = parse_freeze("2026-12-20", "2027-01-03", "holidays", PARIS)
    assert freeze == Freeze(paris(2026, 12, 20), paris(2027, 1, 4), "holidays")
    assert freeze.covers(paris(2027, 1, 3, 23, 59))
    assert not freeze.covers(paris(2027, 1, 4))
    assert not freeze.covers(paris(2026, 12, 19, 23, 59))


def test_parse_freeze_date_times_and_offsets() -> None:
    freeze = parse_freeze("2026-12-20T18:00", "2026-12-21 06:30", "  release party ", PARIS)
    assert freeze.start == paris(2026, 12, 20, 18)
    assert freeze.end == paris(2026, 12, 21, 6, 30)
    assert freeze.reason == "release party"
    offset = parse_freeze("2026-12-20T17:00:00+00:00", "2026-12-21", "x", PARIS)
    assert offset.start == paris(2026, 12, 20, 18)
    assert offset.start.tzinfo is PARIS


def test_parse_freeze_in_dst_gap_starts_at_transition() -> None:
    freeze = parse_freeze("2026-03-29T02:30", "2026-03-29T05:00", "gap", PARIS)
    assert freeze.start == utc(2026, 3, 29, 1)  # 03:00 CEST


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-13-01", "2026-12-31", "invalid freeze start '2026-13-01'"),
        ("2026-12-20", "soon", "invalid freeze end 'soon'"),
        ("2026-12-20", "2026-12-19", "freeze end '2026-12-19' is not after its start '2026-12-20'"),
        ("2026-12-20T10:00", "2026-12-20T10:00", "freeze end .* is not after its start"),
    ],
)
def test_parse_freeze_errors(start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_freeze(start, end, "r", PARIS)


def test_freeze_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Freeze(datetime(2026, 1, 1), paris(2026, 1, 2), "x")
    with pytest.raises(ValueError, match="must end after it starts"):
        Freeze(paris(2026, 1, 2), paris(2026, 1, 1), "x")


# --------------------------------------------------------------------------- decisions


def test_inside_window_is_open() -> None:
    now = paris(2026, 11, 24, 10, 15)  # Tuesday
    decision = decide(now, "Mon-Thu 09:00-16:00")
    assert decision == WindowDecision(open=True, reason=None, next_open=now)


def test_window_start_inclusive_end_exclusive() -> None:
    assert decide(paris(2026, 11, 24, 9, 0), "Mon-Thu 09:00-16:00").open
    assert decide(paris(2026, 11, 24, 15, 59, 59), "Mon-Thu 09:00-16:00").open
    at_end = decide(paris(2026, 11, 24, 16, 0), "Mon-Thu 09:00-16:00")
    assert not at_end.open
    assert at_end.next_open == paris(2026, 11, 25, 9, 0)


def test_before_window_opens_same_day() -> None:
    decision = decide(paris(2026, 11, 24, 8, 59), "Mon-Thu 09:00-16:00")
    assert not decision.open
    assert decision.next_open == paris(2026, 11, 24, 9, 0)


def test_friday_refused_until_monday() -> None:
    decision = decide(paris(2026, 11, 20, 10, 0), "Mon-Thu 09:00-16:00")  # Friday
    assert not decision.open
    assert decision.reason == "outside deploy windows (Mon-Thu 09:00-16:00 Europe/Paris)"
    assert decision.next_open == paris(2026, 11, 23, 9, 0)
    assert decision.next_open is not None and decision.next_open.tzinfo is PARIS
    assert format_next_open(decision.next_open) == "Mon 2026-11-23 09:00 CET"
    # Thursday after closing time also waits until Monday.
    assert decide(paris(2026, 11, 19, 16, 0), "Mon-Thu 09:00-16:00").next_open == paris(2026, 11, 23, 9)


def test_window_crossing_midnight_belongs_to_its_start_day() -> None:
    night = "Fri 22:00-02:00"
    assert decide(paris(2026, 11, 20, 23, 0), night).open  # Friday night
    assert decide(paris(2026, 11, 21, 1, 59), night).open  # early Saturday, same window
    assert not decide(paris(2026, 11, 21, 2, 0), night).open
    assert not decide(paris(2026, 11, 21, 23, 0), night).open  # Saturday night: not a window day
    assert not decide(paris(2026, 11, 20, 1, 0), night).open  # early Friday: Thursday's slot
    assert decide(paris(2026, 11, 20, 21, 0), night).next_open == paris(2026, 11, 20, 22, 0)
    assert decide(paris(2026, 11, 21, 2, 0), night).next_open == paris(2026, 11, 27, 22, 0)


def test_wrapping_day_range() -> None:
    window = "Sat-Mon 00:00-06:00"
    assert decide(paris(2026, 11, 21, 3, 0), window).open  # Saturday
    assert decide(paris(2026, 11, 23, 5, 59), window).open  # Monday
    tuesday = decide(paris(2026, 11, 24, 3, 0), window)
    assert not tuesday.open
    assert tuesday.next_open == paris(2026, 11, 28, 0, 0)


def test_multiple_windows() -> None:
    windows = ["Mon-Thu 09:00-16:00", "Fri 09:00-12:00"]
    assert decide(paris(2026, 11, 20, 11, 0), windows).open  # Friday morning
    afternoon = decide(paris(2026, 11, 20, 13, 0), windows)
    assert not afternoon.open
    assert afternoon.reason == "outside deploy windows (Mon-Thu 09:00-16:00, Fri 09:00-12:00 Europe/Paris)"
    assert afternoon.next_open == paris(2026, 11, 23, 9, 0)
    assert decide(paris(2026, 11, 19, 17, 0), windows).next_open == paris(2026, 11, 20, 9, 0)


def test_overlapping_windows_merge() -> None:
    windows = ["daily 08:00-12:00", "Tue 11:00-14:00"]
    assert decide(paris(2026, 11, 24, 13, 0), windows).open
    assert decide(paris(2026, 11, 24, 14, 0), windows).next_open == paris(2026, 11, 25, 8, 0)


def test_full_day_window_is_always_open() -> None:
    assert decide(paris(2026, 11, 22, 3, 17), "daily 00:00-00:00").open


def test_no_windows_means_open() -> None:
    now = paris(2026, 11, 20, 23, 0)
    assert decide(now) == WindowDecision(True, None, now)


def test_freeze_refuses_with_reason_and_next_open_after_it() -> None:
    freeze = parse_freeze("2026-12-20", "2027-01-03", "holidays", PARIS)
    decision = decide(paris(2026, 12, 22, 10, 0), "Mon-Thu 09:00-16:00", [freeze])
    assert not decision.open
    assert decision.reason == "deploy freeze until 2027-01-04 00:00 CET: holidays"
    assert decision.next_open == paris(2027, 1, 4, 9, 0)  # Monday after the freeze


def test_freeze_without_windows_opens_at_its_end() -> None:
    freeze = parse_freeze("2026-12-20T18:00", "2026-12-21T06:30", "db migration", PARIS)
    decision = decide(paris(2026, 12, 20, 20, 0), [], [freeze])
    assert decision.reason == "deploy freeze until 2026-12-21 06:30 CET: db migration"
    assert decision.next_open == paris(2026, 12, 21, 6, 30)
    assert decide(paris(2026, 12, 21, 6, 30), [], [freeze]).open


def test_freeze_ending_inside_a_window_opens_mid_window() -> None:
    freeze = parse_freeze("2026-11-24T10:00", "2026-11-24T11:45", "incident", PARIS)
    decision = decide(paris(2026, 11, 24, 10, 30), "Mon-Thu 09:00-16:00", [freeze])
    assert decision.next_open == paris(2026, 11, 24, 11, 45)


def test_window_start_during_freeze_is_skipped() -> None:
    freeze = parse_freeze("2026-11-23", "2026-11-24", "audit", PARIS)  # Mon + Tue
    decision = decide(paris(2026, 11, 20, 10, 0), "Mon-Thu 09:00-16:00", [freeze])
    assert decision.reason == "outside deploy windows (Mon-Thu 09:00-16:00 Europe/Paris)"
    assert decision.next_open == paris(2026, 11, 25, 9, 0)


def test_chained_freezes_report_the_real_end() -> None:
    first = parse_freeze("2026-12-20", "2026-12-26", "holidays", PARIS)
    second = parse_freeze("2026-12-27", "2027-01-03", "year end", PARIS)
    decision = decide(paris(2026, 12, 22), [], [first, second])
    assert decision.reason == "deploy freeze until 2027-01-04 00:00 CET: holidays"
    both = decide(
        paris(2026, 12, 28), [], [first, second, parse_freeze("2026-12-28", "2026-12-28", "", PARIS)]
    )
    assert both.reason == "deploy freeze until 2027-01-04 00:00 CET: year end"


def test_no_opening_within_horizon() -> None:
    long = parse_freeze("2027-01-01", "2027-06-30", "migration", PARIS)
    decision = decide(paris(2027, 1, 2), "Mon-Thu 09:00-16:00", [long])
    assert not decision.open
    assert decision.next_open is None


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_window(datetime(2026, 11, 24, 10), [OFFICE], [], PARIS)


# --------------------------------------------------------------------------- time zones


def test_same_instant_open_in_one_zone_closed_in_another() -> None:
    now = utc(2026, 11, 23, 8, 30)  # Monday: 09:30 Paris, 03:30 New York, 17:30 Tokyo
    assert check_window(now, [OFFICE], [], PARIS).open
    new_york = check_window(now, [OFFICE], [], NEW_YORK)
    assert not new_york.open
    assert new_york.reason == "outside deploy windows (Mon-Thu 09:00-16:00 America/New_York)"
    assert new_york.next_open == datetime(2026, 11, 23, 9, tzinfo=NEW_YORK)
    assert new_york.next_open is not None
    assert format_next_open(new_york.next_open) == "Mon 2026-11-23 09:00 EST"
    tokyo = check_window(now, [OFFICE], [], TOKYO)
    assert not tokyo.open
    assert tokyo.next_open == datetime(2026, 11, 24, 9, tzinfo=TOKYO)


def test_next_open_is_expressed_in_env_zone() -> None:
    decision = check_window(utc(2026, 11, 20, 12), [OFFICE], [], NEW_YORK)
    assert decision.next_open is not None
    assert decision.next_open.tzinfo is NEW_YORK
    assert decision.next_open.utcoffset() == timedelta(hours=-5)


# --------------------------------------------------------------------------- DST
# 2026: Paris springs forward Sun Mar 29 02:00 CET -> 03:00 CEST, falls back Sun Oct 25
# 03:00 CEST -> 02:00 CET; New York springs forward Sun Mar 8 02:00 EST -> 03:00 EDT,
# falls back Sun Nov 1 02:00 EDT -> 01:00 EST.


def test_office_hours_follow_wall_clock_across_dst() -> None:
    before = check_window(utc(2026, 3, 27, 8, 0), [OFFICE], [], PARIS)  # Fri 09:00 CET
    assert not before.open
    assert before.next_open == utc(2026, 3, 30, 7, 0)  # Mon 09:00 CEST
    assert before.next_open is not None
    assert format_next_open(before.next_open) == "Mon 2026-03-30 09:00 CEST"
    assert check_window(utc(2026, 3, 30, 7, 0), [OFFICE], [], PARIS).open
    assert not check_window(utc(2026, 3, 30, 6, 59), [OFFICE], [], PARIS).open


def test_paris_spring_forward_window_starts_at_first_existing_instant() -> None:
    window = "daily 02:30-04:00"
    decision = decide(utc(2026, 3, 29, 0, 59), window)  # 01:59 CET
    assert not decision.open
    assert decision.next_open == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert decision.next_open is not None
    assert format_next_open(decision.next_open) == "Sun 2026-03-29 03:00 CEST"
    assert decide(utc(2026, 3, 29, 1, 0), window).open
    assert decide(utc(2026, 3, 29, 1, 59), window).open  # 03:59 CEST
    assert not decide(utc(2026, 3, 29, 2, 0), window).open  # 04:00 CEST
    # A window ending in the gap ends at the transition.
    assert decide(utc(2026, 3, 29, 0, 30), "daily 01:00-02:30").open  # 01:30 CET
    assert not decide(utc(2026, 3, 29, 1, 0), "daily 01:00-02:30").open  # 03:00 CEST
    # A window entirely inside the gap does not happen that day.
    gap_only = decide(utc(2026, 3, 28, 23, 0), "daily 02:00-02:30")
    assert gap_only.next_open == datetime(2026, 3, 30, 2, 0, tzinfo=PARIS)


def test_paris_fall_back_window_covers_both_occurrences() -> None:
    window = "daily 02:00-03:00"
    assert not decide(utc(2026, 10, 24, 23, 59), window).open  # 01:59 CEST
    assert decide(utc(2026, 10, 25, 0, 0), window).open  # 02:00 CEST
    assert decide(utc(2026, 10, 25, 0, 30), window).open  # 02:30 CEST
    assert decide(utc(2026, 10, 25, 1, 30), window).open  # 02:30 CET
    closed = decide(utc(2026, 10, 25, 2, 0), window)  # 03:00 CET
    assert not closed.open
    assert closed.next_open == datetime(2026, 10, 26, 2, 0, tzinfo=PARIS)


def test_fall_back_compares_instants_not_wall_clock() -> None:
    # Python compares datetimes sharing a tzinfo by wall clock; the window must not.
    window = "daily 00:00-02:30"  # ends at the second 02:30 (CET)
    late_cest = datetime(2026, 10, 25, 2, 45, tzinfo=PARIS)  # fold=0: 02:45 CEST = 00:45Z
    assert late_cest.astimezone(UTC) == utc(2026, 10, 25, 0, 45)
    assert decide(late_cest, window).open
    second_0230 = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS)  # 02:30 CET
    assert not decide(second_0230, window).open
    assert decide(datetime(2026, 10, 25, 2, 29, fold=1, tzinfo=PARIS), window).open
    freeze = Freeze(paris(2026, 10, 25, 2, 50), datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=PARIS), "f")
    assert not decide(datetime(2026, 10, 25, 2, 5, fold=1, tzinfo=PARIS), [], [freeze]).open
    assert decide(datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=PARIS), [], [freeze]).open


def test_new_york_spring_forward() -> None:
    window = "Sun 02:30-03:30"
    decision = check_window(utc(2026, 3, 8, 6, 0), [parse_window(window)], [], NEW_YORK)  # 01:00 EST
    assert decision.next_open == utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the end of the gap
    assert decision.next_open is not None
    assert format_next_open(decision.next_open) == "Sun 2026-03-08 03:00 EDT"
    assert check_window(utc(2026, 3, 8, 7, 29), [parse_window(window)], [], NEW_YORK).open
    assert not check_window(utc(2026, 3, 8, 7, 30), [parse_window(window)], [], NEW_YORK).open


def test_new_york_fall_back_covers_both_one_thirties() -> None:
    windows = [parse_window("daily 01:00-02:00")]
    first = check_window(utc(2026, 11, 1, 4, 59), windows, [], NEW_YORK)  # 00:59 EDT
    assert first.next_open is not None
    # Compare in UTC: per PEP 495, == across zones is False for an ambiguous wall time.
    assert first.next_open.astimezone(UTC) == utc(2026, 11, 1, 5, 0)
    assert format_next_open(first.next_open) == "Sun 2026-11-01 01:00 EDT"
    assert check_window(utc(2026, 11, 1, 5, 30), windows, [], NEW_YORK).open  # 01:30 EDT
    assert check_window(utc(2026, 11, 1, 6, 30), windows, [], NEW_YORK).open  # 01:30 EST
    after = check_window(utc(2026, 11, 1, 7, 0), windows, [], NEW_YORK)  # 02:00 EST
    assert not after.open
    assert after.next_open == utc(2026, 11, 2, 6, 0)  # Mon 01:00 EST


def test_lord_howe_half_hour_gap() -> None:
    # Lord Howe springs forward 02:00 -> 02:30 (+10:30 -> +11:00) on Sun 2026-10-04.
    decision = check_window(
        datetime(2026, 10, 4, 1, 0, tzinfo=LORD_HOWE), [parse_window("Sun 02:10-03:00")], [], LORD_HOWE
    )
    assert decision.next_open == datetime(2026, 10, 4, 2, 30, tzinfo=LORD_HOWE)
    assert decision.next_open is not None
    assert decision.next_open.utcoffset() == timedelta(hours=11)


# --------------------------------------------------------------------------- property

ZONES = [PARIS, NEW_YORK, LORD_HOWE, TOKYO, UTC_TZ]

windows_strategy = st.lists(
    st.builds(
        Window,
        days=st.frozensets(st.integers(0, 6), min_size=1, max_size=3),
        start=st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 7])),
        end=st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 7])),
    ),
    max_size=3,
)
instants = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2028, 12, 31),
    timezones=st.sampled_from([UTC, *ZONES]),
)


@st.composite
def freezes_strategy(draw: st.DrawFn) -> list[Freeze]:
    result = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(instants)
        length = draw(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=20)))
        # Aware-datetime arithmetic in one zone is wall-clock arithmetic: add in UTC.
        end = (start.astimezone(UTC) + length).astimezone(start.tzinfo)
        result.append(Freeze(start, end, "f"))
    return result


@settings(max_examples=150, deadline=None)
@given(
    now=instants,
    windows=windows_strategy,
    freezes=freezes_strategy(),
    tz=st.sampled_from(ZONES),
)
# 02:00 on the day New York springs forward does not exist: an instant in the gap.
@example(now=datetime(2026, 3, 8, 2, 0, tzinfo=NEW_YORK), windows=[], freezes=[], tz=PARIS)
def test_next_open_is_open_and_nothing_earlier_is(
    now: datetime, windows: list[Window], freezes: list[Freeze], tz: ZoneInfo
) -> None:
    decision = check_window(now, windows, freezes, tz)
    if decision.open:
        # In UTC: per PEP 495, == across zones is False for a wall time in a gap or fold.
        assert decision.next_open is not None
        assert decision.next_open.astimezone(UTC) == now.astimezone(UTC)
        assert decision.reason is None
        return
    assert decision.reason
    if decision.next_open is None:
        return
    assert decision.next_open > now
    assert decision.next_open.tzinfo is tz
    assert check_window(decision.next_open, windows, freezes, tz).open
    just_before = decision.next_open - timedelta(microseconds=1)
    assert not check_window(just_before, windows, freezes, tz).open
    midway = now.astimezone(UTC) + (decision.next_open - now) / 2
    assert not check_window(midway, windows, freezes, tz).open
