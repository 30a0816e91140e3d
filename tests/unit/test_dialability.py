"""Calling windows (local time, DST, site floor, blackouts) and retry rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.dialability import (
    DEFAULT_RETRY_RULES,
    CallingWindow,
    DialabilityError,
    LeadStatus,
    SiteFloor,
    decide_retry,
    format_days,
    next_window_open,
    parse_days,
    parse_hhmm,
    parse_retry_spec,
    retry_rules_from_json,
    retry_rules_to_json,
    window_refusal,
)
from dialer.domain.results import CallResult

FLOOR = SiteFloor()
ALL_DAY = CallingWindow(time(0, 0), time.max)
ZONES = ["Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Sydney", "UTC"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_floor_edges_in_india() -> None:
    assert window_refusal(utc("2026-11-30T03:29:59"), "Asia/Kolkata", ALL_DAY, FLOOR) == "hours"
    assert window_refusal(utc("2026-11-30T03:30"), "Asia/Kolkata", ALL_DAY, FLOOR) is None
    assert window_refusal(utc("2026-11-30T15:29:59"), "Asia/Kolkata", ALL_DAY, FLOOR) is None
    assert window_refusal(utc("2026-11-30T15:30"), "Asia/Kolkata", ALL_DAY, FLOOR) == "hours"


def test_dst_spring_forward_and_fall_back_in_new_york() -> None:
    win = CallingWindow(time(9, 0), time(17, 0))
    # 2026-03-08 clocks go 02:00 -> 03:00; 13:00 UTC is 09:00 EDT (open), a day before 08:00 EST.
    assert window_refusal(utc("2026-03-08T13:00"), "America/New_York", win, FLOOR) is None
    assert window_refusal(utc("2026-03-07T13:00"), "America/New_York", win, FLOOR) == "hours"
    # 2026-11-01 back to EST: 13:30 UTC is 08:30 EST (closed), the day before 09:30 EDT (open).
    assert window_refusal(utc("2026-11-01T13:30"), "America/New_York", win, FLOOR) == "hours"
    assert window_refusal(utc("2026-10-31T13:30"), "America/New_York", win, FLOOR) is None
    opens = next_window_open(utc("2026-11-01T13:30"), "America/New_York", win, FLOOR)
    assert opens == utc("2026-11-01T14:00")


def test_days_and_blackout_are_local_dates() -> None:
    win = CallingWindow(
        time(9), time(21), days=parse_days("mon-fri"), blackout=frozenset({date(2026, 12, 1)})
    )
    # 2026-11-30T20:00 UTC is already Tuesday 01:30 in India but Monday in London.
    assert window_refusal(utc("2026-12-01T06:00"), "Asia/Kolkata", win, FLOOR) == "blackout"
    assert window_refusal(utc("2026-12-05T06:00"), "Asia/Kolkata", win, FLOOR) == "day"
    assert window_refusal(utc("2026-12-02T06:00"), "Asia/Kolkata", win, FLOOR) is None


def test_campaign_cannot_widen_the_floor() -> None:
    wide = CallingWindow(time(6), time(23))
    assert wide.narrowed_to(FLOOR) == CallingWindow(time(9), time(21))
    assert window_refusal(utc("2026-11-30T02:00"), "Asia/Kolkata", wide, FLOOR) == "hours"


@given(
    instant=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1)),
    tz=st.sampled_from(ZONES),
    start=st.integers(0, 23),
    length=st.integers(1, 24),
)
def test_window_agrees_with_local_clock(
    instant: datetime, tz: str, start: int, length: int
) -> None:
    now = instant.replace(tzinfo=UTC)
    end = time.max if start + length >= 24 else time(start + length)
    win = CallingWindow(time(start), end)
    local = now.astimezone(ZoneInfo(tz)).time()
    eff_start, eff_end = max(time(start), FLOOR.start), min(end, FLOOR.end)
    expected_open = eff_start <= local < eff_end
    assert (window_refusal(now, tz, win, FLOOR) is None) == expected_open
    opens = next_window_open(now, tz, win, FLOOR)
    if eff_start < eff_end:
        assert opens is not None and opens >= now
        assert window_refusal(opens, tz, win, FLOOR) is None
        assert opens - now <= timedelta(days=2)
    else:
        assert opens is None


def test_parsers() -> None:
    assert parse_hhmm("24:00") == time.max and parse_hhmm("9:05") == time(9, 5)
    with pytest.raises(DialabilityError):
        parse_hhmm("25:00")
    assert format_days(parse_days("fri-mon")) == "mon,fri,sat,sun"
    assert parse_retry_spec("busy=2h/4") == (
        CallResult.BUSY,
        DEFAULT_RETRY_RULES[CallResult.BUSY].__class__(timedelta(hours=2), 4),
    )
    with pytest.raises(DialabilityError, match="never retried"):
        parse_retry_spec("invalid_number=1h/3")
    rules = retry_rules_from_json(
        {
            "busy": {"delay_minutes": 5, "max_attempts": 9},
            "invalid_number": {"delay_minutes": 1, "max_attempts": 9},
        }
    )
    assert rules[CallResult.BUSY].max_attempts == 9
    assert rules[CallResult.INVALID_NUMBER].max_attempts == 0  # forced: never retried
    assert retry_rules_from_json(retry_rules_to_json(rules)) == rules


NOW = utc("2026-11-30T06:00")


@given(result=st.sampled_from(list(CallResult)), attempts=st.integers(1, 20))
def test_retry_decisions(result: CallResult, attempts: int) -> None:
    d = decide_retry(
        result,
        attempts,
        NOW,
        DEFAULT_RETRY_RULES,
        campaign_max_attempts=6,
        abandon_no_redial_hours=72,
    )
    if result is CallResult.INVALID_NUMBER:
        assert d.status is LeadStatus.INVALID and d.next_dial_after is None
    elif result is CallResult.HUMAN or attempts >= 6:
        assert d.status is LeadStatus.DONE
    if d.status is LeadStatus.READY:
        assert d.next_dial_after is not None and d.next_dial_after >= NOW
        assert attempts < DEFAULT_RETRY_RULES[result].max_attempts
    if result is CallResult.ABANDONED and d.status is LeadStatus.READY:
        assert d.next_dial_after == NOW + timedelta(hours=72)
