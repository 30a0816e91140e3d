"""The wallboard: frames rendered to a recording console, asserted on their text."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from rich.console import Console

from dialer.live.state import LiveSnapshot, MemoryLive
from dialer.live.wallboard import Extras, PaceMeter, duration, percent, render

NOW = 10_000.0  # engine clock (monotonic seconds)


def frame(snapshot: LiveSnapshot, now: float = NOW, **kwargs: Any) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(render(snapshot, now, **kwargs))
    return console.export_text()


def row_of(text: str, first_cell: str) -> str:
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if cells and cells[0] == first_cell:
            return " ".join(cells)
    raise AssertionError(f"no row starting {first_cell!r} in\n{text}")


def floor() -> LiveSnapshot:
    """A floor like the engine publishes it."""
    live = MemoryLive(clock=lambda: NOW)
    live.counters(
        "1",
        {
            "name": "survey",
            "status": "running",
            "mode": "predictive",
            "dials": 120,
            "answers": 50,
            "live": 40,
            "connects": 39,
            "abandoned": 1,
            "abandon_rate": 1 / 40,
            "ready": 1,
            "ringing": 3,
            "waiting": 1,
            "last_decision": 2,
            "at": NOW,
        },
    )
    live.counters(
        "inbound:main",
        {
            "kind": "inbound_queue",
            "offered": 9,
            "answered": 7,
            "abandoned": 1,
            "waiting": 1,
            "longest_wait": 14.0,
            "average_wait": 6.5,
            "service_level": 0.75,
            "service_level_seconds": 20,
        },
    )
    live.agent("1001", {"state": "TALKING", "since": NOW - 75, "campaign": "1", "call": "c-9"})
    live.agent("1002", {"state": "PAUSED", "since": NOW - 3700, "reason": "lunch"})
    live.agent("1003", {"state": "READY", "since": NOW - 5, "campaign": "1", "seat": "seat003"})
    live.call("c-9", {"phase": "connected", "campaign": "1", "agent": "1001", "launched": NOW - 90})
    live.call("c-10", {"phase": "ringing", "campaign": "1", "launched": NOW - 12})
    live.call("c-11", {"phase": "waiting", "campaign": "1", "launched": NOW - 20})
    live.event({"kind": "call", "call": "c-8", "result": "abandoned", "agent": None})
    return _snap(live)


def _snap(live: MemoryLive) -> LiveSnapshot:
    import asyncio

    return asyncio.run(live.snapshot())


def test_campaign_row_shows_counters_rates_and_the_pacer() -> None:
    text = frame(floor(), extras=Extras(pace={"1": 14.0}, abandon_30d={"1": 0.021}))
    row = row_of(text, "survey")
    assert row.split() == [
        "survey",
        "running",
        "predictive",
        "14.0",  # pace
        "120",  # dials
        "40",  # live answers
        "39",  # connects
        "1",  # abandoned
        "2.5%",  # today
        "2.1%",  # 30 days
        "50.0%",  # occupancy now: 1 talking of 2 not paused
        "3",
        "1",
        "1",
        "launch",
        "2",
    ]


def test_agents_show_state_and_time_in_it() -> None:
    text = frame(floor())
    assert row_of(text, "1001").split() == ["1001", "TALKING", "1:15", "survey", "c-9"]
    assert row_of(text, "1002").split() == ["1002", "PAUSED", "1:01:40", "lunch"]
    assert row_of(text, "1003").split() == ["1003", "READY", "0:05", "survey", "seat003"]
    # Busy agents first, paused last.
    assert text.index("1001") < text.index("1003") < text.index("1002 ")


def test_calls_ringing_and_waiting_but_not_connected() -> None:
    text = frame(floor())
    assert row_of(text, "c-11").split() == ["c-11", "survey", "waiting", "0:20"]
    assert row_of(text, "c-10").split() == ["c-10", "survey", "ringing", "0:12"]
    calls_part = text[text.index("Calls ringing") :]
    assert "c-9 " not in calls_part
    assert "calls ringing 1, waiting 1" in text


def test_inbound_queue_and_events() -> None:
    text = frame(floor())
    assert row_of(text, "inbound:main").split() == [
        "inbound:main",
        "1",
        "9",
        "7",
        "1",
        "0:14",
        "0:06",
        "75.0%",
        "in",
        "20s",
        "2",  # agents who take inbound callers (not paused): 1001, 1003
    ]
    assert "call: call=c-8, result=abandoned" in text


def test_work_assignment_column_and_queue_staffing() -> None:
    live = MemoryLive(clock=lambda: NOW)
    live.counters("inbound:main", {"kind": "inbound_queue", "waiting": 0})
    live.counters("1", {"name": "survey", "status": "running", "at": NOW})
    for agent, work in (
        ("2001", "inbound_only"),
        ("2002", "outbound_first"),
        ("2003", "outbound_only"),
        ("2004", "inbound_first"),
    ):
        campaign = "" if work == "inbound_only" else "1"
        live.agent(agent, {"state": "READY", "since": NOW, "campaign": campaign, "work": work})
    text = frame(_snap(live))
    assert row_of(text, "2001").split()[-2:] == ["in", "only"]
    assert row_of(text, "2002").split()[-3:] == ["survey", "out", "first"]
    assert row_of(text, "2003").split()[-2:] == ["out", "only"]
    # 2001 and 2004 take inbound callers first; 2002 only as overflow; 2003 never.
    assert row_of(text, "inbound:main").endswith("2 + 1 overflow")


def test_a_second_frame_moves_time_on() -> None:
    snap = floor()
    later = frame(snap, NOW + 60)
    assert row_of(later, "1001").split()[2] == "2:15"


def test_stale_data_is_flagged_and_empty_floor_renders() -> None:
    snap = floor()
    assert snap.updated_at is not None
    assert "NO UPDATE" not in frame(snap, wall=snap.updated_at + 1)
    assert "NO UPDATE FOR 1:00" in frame(snap, wall=snap.updated_at + 60)
    empty = frame(LiveSnapshot())
    assert "none logged in" in empty and "Recent: -" in empty


def test_abandonment_over_target_is_red() -> None:
    live = MemoryLive()
    live.counters("1", {"name": "x", "abandon_rate": 0.05, "target_abandon": 3.0})
    console = Console(record=True, width=200, color_system="truecolor", force_terminal=True)
    console.print(render(_snap(live), NOW))
    html = console.export_html(inline_styles=True)
    assert re.search(
        r'<span style="color: #800000; text-decoration-color: #800000; '
        r'font-weight: bold">\s*5\.0%',
        html,
    )


def test_pace_meter_counts_dials_in_the_last_minute() -> None:
    meter = PaceMeter(window=60)

    def snap(dials: int) -> LiveSnapshot:
        return LiveSnapshot(counters=MappingProxyType({"1": {"dials": dials}}))

    assert meter.update(snap(100), 0.0) == {}
    assert meter.update(snap(110), 30.0) == {"1": 20.0}
    assert meter.update(snap(130), 60.0) == {"1": 30.0}
    # Old samples leave the window.
    assert meter.update(snap(140), 120.0) == {"1": 10.0}
    # Counters that go back (controller restart) start a new window.
    assert meter.update(snap(3), 121.0) == {}


def test_engine_clock_offset_travels_with_the_snapshot() -> None:
    live = MemoryLive()
    live.counters("1", {"at": 500.0})
    snap = _snap(live)
    assert abs(snap.engine_now(snap.updated_at) - 500.0) < 1.0


def test_formats() -> None:
    assert duration(None) == "-" and duration(-3) == "0:00" and duration(3725) == "1:02:05"
    assert percent(None) == "-" and percent(0.0312) == "3.1%"
