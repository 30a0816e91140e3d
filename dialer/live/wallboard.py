"""The wallboard: one rich frame of the floor from a :class:`LiveSnapshot` (pure; no I/O).

``render(snapshot, now)`` draws, per campaign: status, pace (dials in the last minute), dials,
answers, connects, abandonment today and over 30 days, occupancy, calls ringing and waiting, the
pacer's last decision; per inbound queue: waiting, offered, answered, abandoned, service level;
per agent: state and time in it; the calls ringing or waiting; the last events.  ``now`` is on
the engine's clock (``snapshot.engine_now()`` from another process).  ``dialer wallboard``
redraws it every second; ``dialer demo`` draws it in process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dialer.domain.work import parse_mode
from dialer.live.state import LiveSnapshot

STATE_STYLES = {
    "READY": "bold green",
    "RESERVED": "yellow",
    "TALKING": "bold cyan",
    "WRAPUP": "magenta",
    "PAUSED": "red",
    "LOGGED_OUT": "dim",
}
BUSY_STATES = frozenset({"RESERVED", "TALKING", "WRAPUP"})
RINGING_PHASES = frozenset({"pending", "originating", "ringing", "answered"})
WAITING_PHASES = frozenset({"waiting"})
MAX_CALL_ROWS = 12
MAX_EVENT_ROWS = 6
STALE_AFTER = 5.0  # seconds without a write before the header warns the data may be old

_NO_FLOATS: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Extras:
    """Figures the live state does not carry, from the database or the wallboard's own memory.

    Keys are the counters' keys (campaign ids as strings).
    """

    pace: Mapping[str, float] = field(default_factory=lambda: _NO_FLOATS)  # dials per minute
    abandon_30d: Mapping[str, float] = field(default_factory=lambda: _NO_FLOATS)  # fraction
    occupancy_today: Mapping[str, float] = field(default_factory=lambda: _NO_FLOATS)  # fraction


class PaceMeter:
    """Dials in the last minute per campaign, from successive snapshots' ``dials`` counters."""

    def __init__(self, window: float = 60.0) -> None:
        """Keep samples for ``window`` seconds (engine clock)."""
        self.window = window
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def update(self, snapshot: LiveSnapshot, now: float) -> dict[str, float]:
        """Record this snapshot; return dials per minute over the window seen so far."""
        out: dict[str, float] = {}
        for key, row in snapshot.counters.items():
            dials = _int(row.get("dials"))
            if dials is None:
                continue
            samples = self._samples.setdefault(key, deque())
            if samples and dials < samples[-1][1]:
                samples.clear()  # a restart or a new day: counters began again
            samples.append((now, dials))
            while len(samples) > 1 and now - samples[0][0] > self.window:
                samples.popleft()
            first_at, first = samples[0]
            span = now - first_at
            if span > 0:
                out[key] = (dials - first) * 60.0 / max(span, 1.0)
            elif "pace" in row:
                out[key] = float(row["pace"])
        return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def duration(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def percent(fraction: float | None) -> str:
    """A fraction as ``3.1%``; ``-`` when unknown."""
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def _abandon_style(rate: float | None, target: float | None) -> str:
    if rate is None:
        return ""
    limit = target if target is not None else 0.03
    if rate > limit:
        return "bold red"
    return "yellow" if rate > 0.8 * limit else "green"


def _target(row: Mapping[str, Any]) -> float | None:
    """The campaign's abandonment cap as a fraction (rows may carry a fraction or a percent)."""
    value = _num(row.get("target_abandon"))
    if value is None:
        value = _num(row.get("pacing_target"))
    if value is None:
        return None
    return value / 100.0 if value > 1 else value


def _campaign_label(snapshot: LiveSnapshot, key: str | None) -> str:
    if not key:
        return ""
    row = snapshot.counters.get(str(key))
    name = row.get("name") if row else None
    return str(name) if name else str(key)


def _is_queue(row: Mapping[str, Any]) -> bool:
    return str(row.get("kind", "")).endswith("queue")


def _occupancy_now(snapshot: LiveSnapshot, key: str) -> float | None:
    """Agents busy (reserved, talking, wrapping up) over agents available (not paused)."""
    working = [
        a
        for a in snapshot.agents.values()
        if str(a.get("campaign", "")) == key and a.get("state") not in ("PAUSED", "LOGGED_OUT")
    ]
    if not working:
        return None
    busy = sum(1 for a in working if a.get("state") in BUSY_STATES)
    return busy / len(working)


def _calls_in(snapshot: LiveSnapshot, key: str, phases: frozenset[str]) -> int:
    return sum(
        1
        for c in snapshot.calls.values()
        if str(c.get("campaign", "")) == key and _phase(c) in phases
    )


def _phase(call: Mapping[str, Any]) -> str:
    return str(call.get("phase") or call.get("state") or "").lower()


def _decision(row: Mapping[str, Any]) -> str:
    decision = row.get("decision", row.get("last_decision"))
    if decision is None:
        return "-"
    if isinstance(decision, Mapping):
        launch = decision.get("launch", decision.get("n", "?"))
        note = decision.get("note", "")
        return f"launch {launch}" + (f" ({note})" if note else "")
    return f"launch {decision}"


def campaigns_table(snapshot: LiveSnapshot, extras: Extras) -> Table:
    """One row per outbound campaign."""
    table = Table(title="Campaigns", title_justify="left", expand=True, pad_edge=False)
    # Short headers: fifteen columns must fit a 120-column terminal.
    for name, justify in (
        ("Campaign", "left"),
        ("Status", "left"),
        ("Mode", "left"),
        ("Pace/min", "right"),
        ("Dials", "right"),
        ("Live", "right"),
        ("Conn.", "right"),
        ("Abd.", "right"),
        ("Abd% day", "right"),
        ("Abd% 30d", "right"),
        ("Occ.", "right"),
        ("Ring", "right"),
        ("Wait", "right"),
        ("Ready", "right"),
        ("Pacer", "left"),
    ):
        table.add_column(name, justify="left" if justify == "left" else "right")
    for key, row in snapshot.counters.items():
        if _is_queue(row):
            continue
        target = _target(row)
        today = _num(row.get("abandon_rate"))
        month = extras.abandon_30d.get(key, _num(row.get("abandon_rate_30d")))
        occupancy = extras.occupancy_today.get(key, _num(row.get("occupancy")))
        if occupancy is None:
            occupancy = _occupancy_now(snapshot, key)
        pace = extras.pace.get(key, _num(row.get("pace")))
        answers = row.get("live", row.get("answers", 0))
        ringing = _int(row.get("ringing"))
        waiting = _int(row.get("waiting"))
        status = str(row.get("status", "-"))
        table.add_row(
            str(row.get("name") or key),
            Text(status, style="green" if status == "running" else "yellow"),
            str(row.get("mode", "-")),
            "-" if pace is None else f"{pace:.1f}",
            str(row.get("dials", 0)),
            str(answers),
            str(row.get("connects", 0)),
            str(row.get("abandoned", row.get("abandons", 0))),
            Text(percent(today), style=_abandon_style(today, target)),
            Text(percent(month), style=_abandon_style(month, target)),
            percent(occupancy),
            str(ringing if ringing is not None else _calls_in(snapshot, key, RINGING_PHASES)),
            str(waiting if waiting is not None else _calls_in(snapshot, key, WAITING_PHASES)),
            str(row.get("ready", "-")),
            _decision(row),
        )
    return table


def queues_table(snapshot: LiveSnapshot) -> Table | None:
    """One row per inbound queue, or ``None`` when there is none."""
    rows = [(k, r) for k, r in snapshot.counters.items() if _is_queue(r)]
    if not rows:
        return None
    table = Table(title="Inbound queues", title_justify="left", expand=True, pad_edge=False)
    for name in (
        "Queue",
        "Waiting",
        "Offered",
        "Answered",
        "Abandoned",
        "Longest wait",
        "Avg wait",
        "Service level",
        "Agents",
    ):
        table.add_column(name, justify="left" if name == "Queue" else "right")
    staffing = _staffing(snapshot)
    for key, row in rows:
        level = _num(row.get("service_level"))
        within = _num(row.get("service_level_seconds"))
        table.add_row(
            str(row.get("name") or key),
            str(row.get("waiting", 0)),
            str(row.get("offered", 0)),
            str(row.get("answered", 0)),
            str(row.get("abandoned", 0)),
            duration(_num(row.get("longest_wait"))),
            duration(_num(row.get("average_wait"))),
            percent(level)
            + (f" in {within:g}s" if within is not None and level is not None else ""),
            staffing,
        )
    return table


def agents_table(snapshot: LiveSnapshot, now: float) -> Table:
    """One row per logged-in agent: state, time in it, reason, campaign, call."""
    table = Table(title="Agents", title_justify="left", expand=True, pad_edge=False)
    for name in ("Agent", "Name", "State", "Time", "Reason", "Campaign", "Work", "Call", "Seat"):
        table.add_column(name, justify="right" if name == "Time" else "left")
    order = {"WAITING": 0, "TALKING": 1, "RESERVED": 2, "WRAPUP": 3, "READY": 4, "PAUSED": 5}
    agents = sorted(
        snapshot.agents.items(), key=lambda kv: (order.get(str(kv[1].get("state")), 9), kv[0])
    )
    for agent_id, row in agents:
        state = str(row.get("state", "?"))
        since = _num(row.get("since"))
        table.add_row(
            agent_id,
            str(row.get("name", "")),
            Text(state, style=STATE_STYLES.get(state, "")),
            duration(None if since is None else now - since),
            str(row.get("reason") or ""),
            _campaign_label(snapshot, row.get("campaign")),
            _work(row),
            str(row.get("call") or ""),
            str(row.get("seat") or ""),
        )
    return table


def _work(row: Mapping[str, Any]) -> str:
    """The agent's work assignment, short (``queue assign``); blank when not published."""
    value = row.get("work")
    return parse_mode(str(value)).short if value else ""


def _staffing(snapshot: LiveSnapshot) -> str:
    """Agents not paused who take inbound callers: first, and as overflow (outbound first)."""
    modes = [
        parse_mode(str(a.get("work") or ""))
        for a in snapshot.agents.values()
        if str(a.get("state")) != "PAUSED"
    ]
    first = sum(1 for m in modes if m.inbound_first)
    overflow = sum(1 for m in modes if m.overflow)
    return f"{first} + {overflow} overflow" if overflow else str(first)


def calls_table(snapshot: LiveSnapshot, now: float) -> Table:
    """The calls ringing or waiting for an agent, oldest first."""
    table = Table(title="Calls ringing / waiting", title_justify="left", expand=True)
    for name in ("Call", "Campaign", "Phase", "Age", "Agent"):
        table.add_column(name, justify="right" if name == "Age" else "left")
    pending = [
        (cid, row)
        for cid, row in snapshot.calls.items()
        if _phase(row) in RINGING_PHASES | WAITING_PHASES
    ]
    pending.sort(key=lambda kv: _num(kv[1].get("since", kv[1].get("launched"))) or now)
    for cid, row in pending[:MAX_CALL_ROWS]:
        since = _num(row.get("since", row.get("launched")))
        phase = _phase(row)
        table.add_row(
            cid,
            _campaign_label(snapshot, row.get("campaign")),
            Text(phase, style="bold red" if phase in WAITING_PHASES else ""),
            duration(None if since is None else now - since),
            str(row.get("agent") or ""),
        )
    if len(pending) > MAX_CALL_ROWS:
        table.caption = f"... and {len(pending) - MAX_CALL_ROWS} more"
    return table


def _header(snapshot: LiveSnapshot, wall: float | None) -> Text:
    by_state: dict[str, int] = {}
    for row in snapshot.agents.values():
        state = str(row.get("state", "?"))
        by_state[state] = by_state.get(state, 0) + 1
    ringing = sum(1 for c in snapshot.calls.values() if _phase(c) in RINGING_PHASES)
    waiting = sum(1 for c in snapshot.calls.values() if _phase(c) in WAITING_PHASES)
    text = Text("dialer wallboard", style="bold")
    text.append(f"   agents {len(snapshot.agents)}: ")
    parts = [f"{state.lower()} {n}" for state, n in sorted(by_state.items())]
    text.append(", ".join(parts) or "none logged in")
    text.append(f"   calls ringing {ringing}, waiting {waiting}")
    if snapshot.updated_at is not None and wall is not None:
        age = wall - snapshot.updated_at
        if age > STALE_AFTER:
            text.append(f"   NO UPDATE FOR {duration(age)}", style="bold red")
    return text


def events_lines(events: Iterable[Mapping[str, Any]]) -> Text:
    """The last few events, one per line."""
    lines = list(events)[-MAX_EVENT_ROWS:]
    text = Text("Recent: ", style="bold")
    if not lines:
        text.append("-")
    for n, ev in enumerate(lines):
        if n:
            text.append("\n        ")
        fields = ", ".join(f"{k}={v}" for k, v in ev.items() if k not in ("at", "kind") and v)
        text.append(f"{ev.get('kind', 'event')}: {fields}")
    return text


def render(
    snapshot: LiveSnapshot,
    now: float,
    *,
    extras: Extras | None = None,
    wall: float | None = None,
) -> RenderableType:
    """One frame: header, campaigns, queues, agents, calls, events (``now``: engine clock)."""
    extras = extras or Extras()
    parts: list[RenderableType] = [_header(snapshot, wall), campaigns_table(snapshot, extras)]
    queues = queues_table(snapshot)
    if queues is not None:
        parts.append(queues)
    parts += [
        agents_table(snapshot, now),
        calls_table(snapshot, now),
        events_lines(snapshot.events),
    ]
    return Group(*parts)
