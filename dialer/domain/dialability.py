"""Pure rules for whether and when a lead may be dialled.

* Calling window: the campaign's hours and days, read in the lead's local time (DST-aware via
  :mod:`zoneinfo`), intersected with the site floor (India: 09:00-21:00 local, from
  ``Settings.site``) that a campaign can narrow but never widen; no calls on blackout dates.
* Retry rules: after each attempt, the result decides the lead's next state: another try after a
  delay (per result, up to a number of attempts), done, or invalid.  Invalid numbers are never
  retried; an abandoned person is not called again for ``site.abandon_no_redial_hours``.

All functions take the clock as an argument (an aware ``datetime``); nothing here does I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.domain.results import NEVER_RETRY, CallResult, parse_result

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class DialabilityError(ValueError):
    """A calling-window or retry-rule setting that cannot be understood."""


class LeadStatus(enum.StrEnum):
    """Where a lead stands; only READY leads are handed out by the hopper."""

    READY = "ready"
    DONE = "done"  # reached, or out of attempts
    INVALID = "invalid"  # the number cannot be called; never retried
    DNC = "dnc"  # found on a do-not-call list


def parse_hhmm(value: str) -> time:
    """``"09:30"`` -> ``time(9, 30)``; ``"24:00"`` means the end of the day."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match:
        raise DialabilityError(f"time {value!r} is not HH:MM")
    hour, minute = int(match.group(1)), int(match.group(2))
    if (hour, minute) == (24, 0):
        return time.max
    if hour > 23 or minute > 59:
        raise DialabilityError(f"time {value!r} is out of range")
    return time(hour, minute)


def format_hhmm(value: time) -> str:
    """The inverse of :func:`parse_hhmm`."""
    return "24:00" if value == time.max else f"{value.hour:02d}:{value.minute:02d}"


def parse_days(value: str) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed,sat"``, ``"all"`` -> weekday numbers (Monday = 0)."""
    text = value.strip().lower()
    if text in {"all", "*", "daily"}:
        return frozenset(range(7))
    days: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "-" in part:
            first, _, last = part.partition("-")
            lo, hi = _day_index(first), _day_index(last)
            days.update(range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(0, hi + 1)])
        else:
            days.add(_day_index(part))
    if not days:
        raise DialabilityError(f"no calling days in {value!r}")
    return frozenset(days)


def format_days(days: Iterable[int]) -> str:
    """Weekday numbers -> ``"mon,tue,..."``."""
    return ",".join(DAY_NAMES[d] for d in sorted(set(days)))


def _day_index(name: str) -> int:
    key = name.strip()[:3]
    if key not in DAY_NAMES:
        raise DialabilityError(f"unknown day {name!r} (use mon..sun)")
    return DAY_NAMES.index(key)


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; raises DialabilityError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DialabilityError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """When calls may be placed, in the called person's local time: [start, end) on days."""

    start: time
    end: time
    days: frozenset[int] = frozenset(range(7))
    blackout: frozenset[date] = frozenset()

    def narrowed_to(self, floor: SiteFloor) -> CallingWindow:
        """This window intersected with the site floor (the floor always wins)."""
        return CallingWindow(
            start=max(self.start, floor.start),
            end=min(self.end, floor.end),
            days=self.days,
            blackout=self.blackout,
        )


@dataclass(frozen=True, slots=True)
class SiteFloor:
    """The legal calling hours for the country, local time; campaigns cannot widen them."""

    start: time = time(9, 0)
    end: time = time(21, 0)

    @classmethod
    def parse(cls, start: str, end: str) -> SiteFloor:
        """From ``Settings.site.calling_floor_start/end`` strings."""
        return cls(parse_hhmm(start), parse_hhmm(end))


def window_refusal(
    now: datetime, tz_name: str, window: CallingWindow, floor: SiteFloor
) -> str | None:
    """Why a lead in ``tz_name`` may not be called at ``now``, or None when it may.

    Reasons: ``"blackout"``, ``"day"`` (not a calling day), ``"hours"`` (outside the window
    narrowed to the site floor).
    """
    if now.tzinfo is None:
        raise DialabilityError("now must be timezone-aware")
    local = now.astimezone(zone(tz_name))
    if local.date() in window.blackout:
        return "blackout"
    if local.weekday() not in window.days:
        return "day"
    effective = window.narrowed_to(floor)
    clock = local.time().replace(tzinfo=None)
    if not (effective.start <= clock < effective.end):
        return "hours"
    return None


def allowed_timezones(
    now: datetime, tz_names: Iterable[str], window: CallingWindow, floor: SiteFloor
) -> frozenset[str]:
    """The subset of ``tz_names`` whose local time is inside the window at ``now``."""
    return frozenset(tz for tz in tz_names if window_refusal(now, tz, window, floor) is None)


def next_window_open(
    after: datetime,
    tz_name: str,
    window: CallingWindow,
    floor: SiteFloor,
    *,
    horizon_days: int = 14,
) -> datetime | None:
    """The first instant at or after ``after`` when the window is open in ``tz_name`` (UTC).

    None if it does not open within ``horizon_days`` (e.g. every day blacked out).
    """
    tz = zone(tz_name)
    if window_refusal(after, tz_name, window, floor) is None:
        return after
    effective = window.narrowed_to(floor)
    if effective.start >= effective.end:
        return None
    local = after.astimezone(tz)
    for offset in range(horizon_days + 1):
        day = local.date() + timedelta(days=offset)
        # Wall-clock start of the window that day; fold=0 resolves a DST gap/overlap forwards.
        candidate = datetime.combine(day, effective.start, tzinfo=tz).astimezone(UTC)
        if candidate >= after and window_refusal(candidate, tz_name, window, floor) is None:
            return candidate
    return None


# --- retry rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryRule:
    """After a result: wait ``delay`` before the next try, allow up to ``max_attempts`` in all."""

    delay: timedelta
    max_attempts: int

    def to_json(self) -> dict[str, int]:
        """As stored in the campaign's ``retry_rules`` JSON."""
        return {
            "delay_minutes": int(self.delay.total_seconds() // 60),
            "max_attempts": self.max_attempts,
        }


def _rule(minutes: float, attempts: int) -> RetryRule:
    return RetryRule(timedelta(minutes=minutes), attempts)


#: Defaults for a new campaign; each campaign may override any of them.
DEFAULT_RETRY_RULES: Mapping[CallResult, RetryRule] = {
    CallResult.BUSY: _rule(15, 5),
    CallResult.NO_ANSWER: _rule(60, 5),
    CallResult.CONGESTION: _rule(5, 5),
    CallResult.FAILED: _rule(30, 3),
    CallResult.LINK_LOST: _rule(5, 5),
    CallResult.REJECTED: _rule(24 * 60, 2),
    CallResult.MACHINE: _rule(4 * 60, 3),
    CallResult.NOT_SURE: _rule(60, 3),
    CallResult.AMD_HANGUP: _rule(2 * 60, 3),
    CallResult.ABANDONED: _rule(0, 3),  # the site's no-redial period is added on top
    CallResult.HUMAN: _rule(0, 0),  # reached: done unless a callback is scheduled
    CallResult.INVALID_NUMBER: _rule(0, 0),
    # inbound calls (issue 10) never move a lead on; listed so every result has a rule
    CallResult.IVR_COMPLETED: _rule(0, 0),
    CallResult.IVR_HANGUP: _rule(0, 0),
}


def retry_rules_from_json(data: Mapping[str, object] | None) -> dict[CallResult, RetryRule]:
    """The defaults overlaid with a campaign's ``{"busy": {"delay_minutes": .., ...}}`` JSON."""
    rules = dict(DEFAULT_RETRY_RULES)
    for key, value in (data or {}).items():
        result = parse_result(key)
        if not isinstance(value, Mapping):
            raise DialabilityError(f"retry rule for {key!r} must be an object")
        minutes = value.get("delay_minutes", 0)
        attempts = value.get("max_attempts", 0)
        if not isinstance(minutes, int | float) or not isinstance(attempts, int) or minutes < 0:
            raise DialabilityError(f"retry rule for {key!r}: bad delay_minutes/max_attempts")
        rules[result] = _rule(float(minutes), attempts)
    for result in NEVER_RETRY:
        rules[result] = _rule(0, 0)
    return rules


def retry_rules_to_json(rules: Mapping[CallResult, RetryRule]) -> dict[str, dict[str, int]]:
    """The inverse of :func:`retry_rules_from_json` (all results spelled out)."""
    return {result.value: rule.to_json() for result, rule in rules.items()}


def parse_retry_spec(spec: str) -> tuple[CallResult, RetryRule]:
    """``"busy=15m/5"`` (delay in m/h/d, then max attempts) -> (result, rule)."""
    match = re.fullmatch(r"\s*([a-z_]+)\s*=\s*(\d+(?:\.\d+)?)([mhd]?)\s*/\s*(\d+)\s*", spec.lower())
    if not match:
        raise DialabilityError(f"retry rule {spec!r} is not RESULT=DELAY[m|h|d]/MAX_ATTEMPTS")
    result = parse_result(match.group(1))
    scale = {"": 1, "m": 1, "h": 60, "d": 24 * 60}[match.group(3)]
    rule = _rule(float(match.group(2)) * scale, int(match.group(4)))
    if result in NEVER_RETRY and rule.max_attempts > 0:
        raise DialabilityError(f"{result.value} is never retried")
    return result, rule


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What happens to a lead after an attempt."""

    status: LeadStatus
    next_dial_after: datetime | None = None
    reason: str = field(default="")


def decide_retry(
    result: CallResult,
    attempts: int,
    now: datetime,
    rules: Mapping[CallResult, RetryRule],
    *,
    campaign_max_attempts: int,
    abandon_no_redial_hours: float,
) -> RetryDecision:
    """The lead's next state after ``attempts`` attempts (this one included) ended in ``result``."""
    if result in NEVER_RETRY:
        return RetryDecision(LeadStatus.INVALID, None, f"{result.value}: never retried")
    rule = rules.get(result, DEFAULT_RETRY_RULES.get(result, _rule(60, 3)))
    if result is CallResult.HUMAN:
        return RetryDecision(LeadStatus.DONE, None, "reached")
    if attempts >= campaign_max_attempts:
        return RetryDecision(LeadStatus.DONE, None, f"campaign limit of {campaign_max_attempts}")
    if attempts >= rule.max_attempts:
        return RetryDecision(LeadStatus.DONE, None, f"{result.value}: {rule.max_attempts} attempts")
    delay = rule.delay
    if result is CallResult.ABANDONED:
        delay = max(delay, timedelta(hours=abandon_no_redial_hours))
    return RetryDecision(LeadStatus.READY, now + delay, f"{result.value}: retry after {delay}")
