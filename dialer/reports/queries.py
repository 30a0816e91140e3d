"""Supervisor reports over the record: daily summary, agents, abandonment, hierarchy coverage.

Each report is an async function of an ``AsyncSession`` and a :class:`Period` that returns a
:class:`Report` (a title, columns and plain rows), which :mod:`dialer.reports.output` prints as a
rich table, CSV, JSON or a PNG chart.  Days are calendar days in the site's time zone.  The
queries fetch the few columns needed for the period and aggregate in Python, so SQLite and
PostgreSQL give the same figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import Agent, AgentStateLog, Call, Campaign, Disposition, Lead
from dialer.domain.results import CallResult

ROLLING_DAYS = 30
TALK_STATES = frozenset({"RESERVED", "TALKING"})
UNANSWERED = frozenset(
    {
        CallResult.BUSY,
        CallResult.NO_ANSWER,
        CallResult.CONGESTION,
        CallResult.INVALID_NUMBER,
        CallResult.REJECTED,
        CallResult.FAILED,
        CallResult.LINK_LOST,
    }
)
MACHINE = frozenset({CallResult.MACHINE, CallResult.NOT_SURE, CallResult.AMD_HANGUP})
LEVELS = ("district", "mandal", "shakti_kendra", "booth")
LEVEL_TITLES = {
    "district": "District",
    "mandal": "Mandal",
    "shakti_kendra": "Shakti kendra",
    "booth": "Booth",
}


@dataclass(frozen=True, slots=True)
class Period:
    """Calendar days ``first``..``last`` (inclusive) in the site's time zone."""

    first: date
    last: date
    timezone: str = "Asia/Kolkata"

    @property
    def zone(self) -> ZoneInfo:
        """The site's zone."""
        return ZoneInfo(self.timezone)

    def start(self, day: date | None = None) -> datetime:
        """Midnight (local) at the start of ``day`` (default: the first day), as aware UTC-able."""
        return datetime.combine(day or self.first, time(0), self.zone)

    @property
    def end(self) -> datetime:
        """Midnight (local) after the last day."""
        return self.start(self.last + timedelta(days=1))

    def day_of(self, moment: datetime) -> date:
        """The local calendar day of an aware moment."""
        return moment.astimezone(self.zone).date()

    def days(self) -> list[date]:
        """Every day of the period, in order."""
        n = (self.last - self.first).days + 1
        return [self.first + timedelta(days=i) for i in range(max(n, 0))]

    def label(self) -> str:
        """``2026-11-28`` or ``2026-11-01..2026-11-28``."""
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


@dataclass(frozen=True, slots=True)
class Report:
    """A report as plain data: what the table, CSV, JSON and chart are made from."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = ()
    chart: dict[str, Any] = field(default_factory=dict)  # series for the PNG, per report

    def as_dicts(self) -> list[dict[str, Any]]:
        """One mapping per row, keyed by column title (``--json``)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or ``None`` when there is nothing to divide by."""
    return part / whole if whole else None


async def _campaign_names(session: AsyncSession) -> dict[int, Campaign]:
    rows = (await session.execute(select(Campaign))).scalars().all()
    return {c.id: c for c in rows}


async def _campaign_id(session: AsyncSession, ref: str | None) -> int | None:
    if ref is None:
        return None
    for c in (await _campaign_names(session)).values():
        if ref in (str(c.id), c.name):
            return c.id
    raise LookupError(f"no campaign {ref!r}")


async def _calls(
    session: AsyncSession, since: datetime, until: datetime, campaign_id: int | None
) -> Sequence[Any]:
    """Calls (final or not) placed in [since, until), outbound first-class, a few columns."""
    stmt = select(
        Call.call_id,
        Call.direction,
        Call.campaign_id,
        Call.lead_id,
        Call.agent_number,
        Call.originated_at,
        Call.answered_at,
        Call.ended_at,
        Call.result,
        Call.wait_seconds,
        Call.talk_seconds,
        Call.wrap_seconds,
    ).where(Call.originated_at >= since, Call.originated_at < until)
    if campaign_id is not None:
        stmt = stmt.where(Call.campaign_id == campaign_id)
    return (await session.execute(stmt)).all()


def _result(value: str | None) -> CallResult | None:
    try:
        return CallResult(value) if value else None
    except ValueError:
        return None


def _mean(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


# --------------------------------------------------------------------------- daily


async def daily(session: AsyncSession, period: Period, campaign: str | None = None) -> Report:
    """Per day and campaign: dials, live answers, machines, connects, abandoned, rates, times."""
    cid = await _campaign_id(session, campaign)
    names = await _campaign_names(session)
    calls = await _calls(session, period.start(), period.end, cid)
    groups: dict[tuple[date, int | None], list[Any]] = defaultdict(list)
    for call in calls:
        if call.direction != "outbound":
            continue
        groups[(period.day_of(call.originated_at), call.campaign_id)].append(call)
    rows = []
    series: dict[str, list[int]] = {k: [] for k in ("connected", "abandoned", "machine", "other")}
    day_totals: dict[date, Counter[str]] = defaultdict(Counter)
    for (day, camp), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        results = Counter(_result(c.result) for c in members)
        live = results[CallResult.HUMAN] + results[CallResult.ABANDONED]
        machine = sum(results[r] for r in MACHINE)
        unanswered = sum(results[r] for r in UNANSWERED)
        connected = [c for c in members if _result(c.result) is CallResult.HUMAN]
        rate = ratio(results[CallResult.ABANDONED], live)
        rows.append(
            (
                str(day),
                names[camp].name if camp in names else str(camp),
                len(members),
                live,
                machine,
                results[CallResult.HUMAN],
                results[CallResult.ABANDONED],
                rate,
                unanswered,
                sum(1 for c in members if c.result is None),
                _mean(c.wait_seconds for c in connected),
                _mean(c.talk_seconds for c in connected),
            )
        )
        totals = day_totals[day]
        totals["connected"] += results[CallResult.HUMAN]
        totals["abandoned"] += results[CallResult.ABANDONED]
        totals["machine"] += machine
        totals["other"] += unanswered
    days = sorted(day_totals)
    for key in series:
        series[key] = [day_totals[d][key] for d in days]
    return Report(
        name="daily",
        title=f"Daily summary {period.label()}",
        columns=(
            "Day",
            "Campaign",
            "Dials",
            "Live answered",
            "Machine",
            "Connected",
            "Abandoned",
            "Abandon rate",
            "Unanswered",
            "In progress",
            "Avg wait s",
            "Avg talk s",
        ),
        rows=tuple(rows),
        notes=("Abandon rate = abandoned / live answered (the pacer's figure).",),
        chart={"days": [str(d) for d in days], "series": series},
    )


# --------------------------------------------------------------------------- abandonment


async def abandonment(session: AsyncSession, period: Period, campaign: str | None = None) -> Report:
    """Per campaign and day: live answers, abandoned, the day's rate and the rolling 30 days."""
    cid = await _campaign_id(session, campaign)
    names = await _campaign_names(session)
    since = period.start(period.first - timedelta(days=ROLLING_DAYS - 1))
    calls = await _calls(session, since, period.end, cid)
    per_day: dict[int | None, dict[date, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for call in calls:
        result = _result(call.result)
        if call.direction != "outbound" or result not in (CallResult.HUMAN, CallResult.ABANDONED):
            continue
        cell = per_day[call.campaign_id][period.day_of(call.originated_at)]
        cell[0] += 1
        cell[1] += result is CallResult.ABANDONED
    rows = []
    chart: dict[str, Any] = {"days": [str(d) for d in period.days()], "campaigns": {}}
    for camp in sorted(per_day, key=lambda c: c or 0):
        days = per_day[camp]
        row_campaign = names.get(camp) if camp is not None else None
        target = row_campaign.pacing_target / 100.0 if row_campaign else None
        label = row_campaign.name if row_campaign else str(camp)
        daily_rates: list[float | None] = []
        rolling_rates: list[float | None] = []
        for day in period.days():
            live, abandoned = days.get(day, (0, 0))
            window = [day - timedelta(days=i) for i in range(ROLLING_DAYS)]
            r_live = sum(days[d][0] for d in window if d in days)
            r_aband = sum(days[d][1] for d in window if d in days)
            rate, rolling = ratio(abandoned, live), ratio(r_aband, r_live)
            daily_rates.append(rate)
            rolling_rates.append(rolling)
            if not live and not r_live:
                continue
            over = (rate or 0) > target or (rolling or 0) > target if target is not None else False
            rows.append(
                (str(day), label, live, abandoned, rate, r_live, r_aband, rolling, target, over)
            )
        chart["campaigns"][label] = {
            "daily": daily_rates,
            "rolling": rolling_rates,
            "target": target,
        }
    return Report(
        name="abandonment",
        title=f"Abandonment {period.label()} (rolling {ROLLING_DAYS} days)",
        columns=(
            "Day",
            "Campaign",
            "Live answered",
            "Abandoned",
            "Rate",
            "30d live",
            "30d abandoned",
            "30d rate",
            "Target",
            "Over target",
        ),
        rows=tuple(rows),
        notes=("Live answered = connected to an agent + abandoned; AMD hang-ups are not in it.",),
        chart=chart,
    )


# --------------------------------------------------------------------------- agents


async def agents(
    session: AsyncSession,
    period: Period,
    campaign: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Per agent: calls, talk and wrap-up time, logged-in and paused time, occupancy.

    The state an agent is in now counts up to ``now`` (default: the current time), not to the
    end of the period.
    """
    cid = await _campaign_id(session, campaign)
    since, until = period.start(), period.end
    current = now if now is not None else datetime.now(UTC)
    names = {a.number: a.name for a in (await session.execute(select(Agent))).scalars()}
    # The state each agent was in when the period began, then every change in it.
    log_rows = (
        await session.execute(
            select(
                AgentStateLog.agent_number,
                AgentStateLog.state,
                AgentStateLog.reason,
                AgentStateLog.at,
                AgentStateLog.campaign_id,
            )
            .where(AgentStateLog.at < until, AgentStateLog.at >= since - timedelta(days=1))
            .order_by(AgentStateLog.agent_number, AgentStateLog.at, AgentStateLog.id)
        )
    ).all()
    by_agent: dict[str, list[Any]] = defaultdict(list)
    for row in log_rows:
        by_agent[row.agent_number].append(row)
    time_in: dict[str, Counter[str]] = defaultdict(Counter)
    paused_by: dict[str, Counter[str]] = defaultdict(Counter)
    for agent, changes in by_agent.items():
        for cur, nxt in zip(changes, [*changes[1:], None], strict=True):
            begin = max(cur.at, since)
            finish = min(nxt.at if nxt is not None else until, until, current)
            seconds = (finish - begin).total_seconds()
            if seconds <= 0 or cur.state == "LOGGED_OUT":
                continue
            if cid is not None and cur.campaign_id not in (cid, None):
                continue
            time_in[agent][cur.state] += seconds
            if cur.state == "PAUSED":
                paused_by[agent][cur.reason or "-"] += seconds
    calls = await _calls(session, since, until, cid)
    handled: Counter[str] = Counter()
    for call in calls:
        if call.agent_number and _result(call.result) is CallResult.HUMAN:
            handled[call.agent_number] += 1
    rows = []
    for agent in sorted(set(time_in) | set(handled)):
        t = time_in[agent]
        talk = sum(t[s] for s in TALK_STATES)
        wrap = t["WRAPUP"]
        logged = sum(t.values())
        paused = t["PAUSED"]
        reasons = ", ".join(
            f"{reason} {_hms(secs)}" for reason, secs in sorted(paused_by[agent].items())
        )
        rows.append(
            (
                agent,
                names.get(agent, ""),
                handled[agent],
                round(talk),
                round(wrap),
                round(logged),
                round(paused),
                ratio(talk + wrap, logged - paused),
                reasons,
            )
        )
    return Report(
        name="agents",
        title=f"Agents {period.label()}",
        columns=(
            "Agent",
            "Name",
            "Calls",
            "Talk s",
            "Wrap-up s",
            "Logged in s",
            "Paused s",
            "Occupancy",
            "Paused by reason",
        ),
        rows=tuple(rows),
        notes=("Occupancy = (talk + wrap-up) / (logged in - paused).",),
        chart={"agents": [r[0] for r in rows], "occupancy": [r[7] for r in rows]},
    )


def _hms(seconds: float) -> str:
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


# --------------------------------------------------------------------------- coverage


async def coverage(
    session: AsyncSession,
    period: Period,
    campaign: str | None = None,
    level: str = "booth",
) -> Report:
    """Per unit of the hierarchy down to ``level``: leads, attempted, reached, dispositions."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    depth = LEVELS.index(level) + 1
    cid = await _campaign_id(session, campaign)
    since, until = period.start(), period.end
    lead_cols = [Lead.id]
    for name in LEVELS[:depth]:
        lead_cols += [getattr(Lead, f"{name}_code"), getattr(Lead, f"{name}_name")]
    stmt = select(*lead_cols)
    if cid is not None:
        stmt = stmt.where(Lead.campaign_id == cid)
    leads = (await session.execute(stmt)).all()
    calls = await _calls(session, since, until, cid)
    attempted: set[int] = set()
    reached: set[int] = set()
    for call in calls:
        if call.lead_id is None:
            continue
        attempted.add(call.lead_id)
        if _result(call.result) is CallResult.HUMAN:
            reached.add(call.lead_id)
    disp_rows = (
        await session.execute(
            select(Disposition.lead_id, Disposition.code).where(
                Disposition.at >= since, Disposition.at < until
            )
        )
    ).all()
    codes_of: dict[int, list[str]] = defaultdict(list)
    for row in disp_rows:
        if row.lead_id is not None:
            codes_of[row.lead_id].append(row.code)
    units: dict[tuple[str, ...], list[int]] = {}
    labels: dict[tuple[str, ...], tuple[str, ...]] = {}
    totals = [0, 0, 0]
    for lead in leads:
        key = tuple(getattr(lead, f"{name}_code") or "-" for name in LEVELS[:depth])
        stats = units.setdefault(key, [0, 0, 0])
        labels.setdefault(
            key,
            tuple(
                _unit(getattr(lead, f"{name}_code"), getattr(lead, f"{name}_name"))
                for name in LEVELS[:depth]
            ),
        )
        stats[0] += 1
        stats[1] += lead.id in attempted
        stats[2] += lead.id in reached
    disp_by_unit: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for lead in leads:
        if lead.id in codes_of:
            key = tuple(getattr(lead, f"{name}_code") or "-" for name in LEVELS[:depth])
            disp_by_unit[key].update(codes_of[lead.id])
    rows = []
    for key in sorted(units):
        n, tried, got = units[key]
        totals[0] += n
        totals[1] += tried
        totals[2] += got
        codes = " ".join(f"{c}:{k}" for c, k in sorted(disp_by_unit[key].items()))
        rows.append((*labels[key], n, tried, got, ratio(got, n), codes))
    columns = (*(LEVEL_TITLES[name] for name in LEVELS[:depth]),)
    return Report(
        name="coverage",
        title=f"Coverage by {LEVEL_TITLES[level].lower()} {period.label()}",
        columns=(*columns, "Leads", "Attempted", "Reached", "Reached %", "Dispositions"),
        rows=tuple(rows),
        notes=(
            f"All units: {totals[0]} leads, {totals[1]} attempted, {totals[2]} reached "
            "in the period.",
            "Reached = answered by a person and connected to an agent.",
        ),
        chart={"units": [r[depth - 1] for r in rows], "reached": [r[depth + 3] for r in rows]},
    )


def _unit(code: str | None, name: str | None) -> str:
    if code and name:
        return f"{name} ({code})"
    return name or code or "-"


REPORTS = {"daily": daily, "agents": agents, "abandonment": abandonment, "coverage": coverage}
