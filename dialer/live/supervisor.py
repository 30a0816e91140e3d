"""What the supervisor commands do (the CLI only parses and prints): bus, live state, database.

Every function takes the loaded settings.  Problems are :class:`LiveError` with one line and
no credentials; the CLI turns them into a click error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialer.engine.commands import Reply
from dialer.live.bus import NoController, RedisBus, origin_label
from dialer.live.connection import LiveError, describe_error, open_redis
from dialer.live.state import LiveSnapshot, RedisLive

CAMPAIGN_STATUS = {"start": "running", "pause": "paused", "stop": "stopped"}
REASON_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
PAUSE_REASONS = ("break", "lunch", "meeting", "training", "technical", "personal", "other")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a supervisor action: ok or not, lines for people, data for ``--json``."""

    ok: bool
    lines: tuple[str, ...]
    data: Mapping[str, Any]


def redis_url(settings: Any) -> str:
    """The configured Redis URL, or a clear error saying how to configure it."""
    url = str(settings.redis.url.get_secret_value())
    if not url:
        raise LiveError(
            "no Redis configured (set redis.url or DIALER_REDIS_URL): live commands talk to a "
            "running `dialer run` through Redis; the demo shows its own wallboard"
        )
    return url


@contextlib.asynccontextmanager
async def connect(settings: Any) -> AsyncIterator[tuple[RedisBus, RedisLive]]:
    """The bus and the live-state reader over one Redis connection pool."""
    url = redis_url(settings)
    prefix = settings.redis.key_prefix
    redis = open_redis(url)
    try:
        yield (
            RedisBus(redis, prefix, url=url, timeout=settings.redis.command_timeout),
            RedisLive(redis, prefix),
        )
    except LiveError:
        raise
    except Exception as exc:
        import redis.exceptions as rexc

        if isinstance(exc, rexc.RedisError | OSError):
            raise LiveError(describe_error(exc, url)) from None
        raise
    finally:
        await redis.aclose()


def reply_outcome(reply: Reply) -> Outcome:
    """A controller's reply as an outcome."""
    data = {"ok": reply.ok, "code": reply.code, "message": reply.message, **reply.data}
    prefix = "" if reply.ok else f"refused ({reply.code}): "
    return Outcome(reply.ok, (prefix + reply.message,), data)


async def send(settings: Any, name: str, args: Mapping[str, Any]) -> Outcome:
    """Send one command to the running controller and wait for its reply."""
    async with connect(settings) as (bus, _live):
        return reply_outcome(await bus.request(name, args))


async def snapshot(settings: Any) -> LiveSnapshot:
    """The live state now, from Redis."""
    async with connect(settings) as (_bus, live):
        return await live.snapshot()


def check_reason(reason: str) -> str:
    """A pause reason code: a short word (letters, digits, ``_.-``)."""
    if not REASON_RE.match(reason):
        raise LiveError(f"reason {reason!r}: use a short code such as {', '.join(PAUSE_REASONS)}")
    return reason


def supervisor_endpoint(settings: Any, to: str) -> str:
    """``sup01`` from ``sup01``, ``01`` or ``1``; only endpoints the configuration renders."""
    prefix = settings.asterisk.supervisor_prefix
    count = settings.asterisk.supervisor_count
    digits = to[len(prefix) :] if to.startswith(prefix) else to
    if not digits.isdigit() or not 1 <= int(digits) <= count:
        raise LiveError(
            f"--to {to!r}: not a supervisor phone (expected {prefix}01..{prefix}{count:02d})"
        )
    return f"{prefix}{int(digits):02d}"


def assign_args(
    agent: str,
    campaign: str | None,
    campaign_option: str | None,
    *,
    blended: bool = False,
    inbound_only: bool = False,
    outbound_only: bool = False,
    priority: str | None = None,
) -> dict[str, Any]:
    """The ``queue.assign`` arguments from the CLI's options (ValueError: they conflict)."""
    from dialer.domain.work import DEFAULT, WorkError, choose

    if campaign and campaign_option and campaign != campaign_option:
        raise ValueError(f"two campaigns given ({campaign}, --campaign {campaign_option})")
    campaign = campaign or campaign_option
    chosen = [
        name
        for name, on in (
            ("blended", blended),
            ("inbound_only", inbound_only),
            ("outbound_only", outbound_only),
        )
        if on
    ]
    if len(chosen) > 1:
        flags = " and ".join("--" + c.replace("_", "-") for c in chosen)
        raise ValueError(f"{flags} conflict: choose one")
    work = chosen[0] if chosen else None
    if not campaign and work is None and priority is None:
        raise ValueError(
            "say what to change: CAMPAIGN, --inbound-only, --outbound-only, --blended or --priority"
        )
    try:
        choose(DEFAULT, work=work, priority=priority, campaign=bool(campaign))
    except WorkError as exc:
        raise ValueError(str(exc)) from None
    args: dict[str, Any] = {"agent": agent}
    if campaign:
        args["campaign"] = campaign
    if work is not None:
        args["work"] = work
    if priority is not None:
        args["priority"] = priority
    return args


# --------------------------------------------------------------------------- campaigns


async def _identity(settings: Any) -> str:
    """Who the audit log names: the Redis ACL user when Redis is configured, else the OS user."""
    url = str(settings.redis.url.get_secret_value())
    if not url:
        return f"os:{origin_label()}"
    async with connect(settings) as (bus, _live):
        return await bus.identity()


async def campaign_action(settings: Any, ref: str, action: str) -> Outcome:
    """Write the campaign's new status to the database, audit it, then tell the controller."""
    from dialer.db.campaigns import CampaignError, update_campaign
    from dialer.db.database import Database
    from dialer.db.models import AuditLog

    status = CAMPAIGN_STATUS[action]
    actor = await _identity(settings)
    db = Database.from_settings(settings)
    try:
        async with db.transaction() as session:
            try:
                row = await update_campaign(session, ref, status=status)
            except CampaignError as exc:
                raise LiveError(str(exc)) from None
            name = row.name
            session.add(
                AuditLog(
                    actor=actor,
                    action=f"campaign.{action}",
                    target=name,
                    params={"status": status, "origin": origin_label()},
                    result="saved",
                    at=datetime.now(UTC),
                )
            )
    except LiveError:
        raise
    except Exception as exc:
        raise LiveError(f"database: {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        await db.close()
    lines = [f"campaign {name}: {status} (saved)"]
    data: dict[str, Any] = {"campaign": name, "status": status, "saved": True}
    if not str(settings.redis.url.get_secret_value()):
        lines.append("no Redis configured: a controller reads the new status when it starts")
        return Outcome(True, tuple(lines), data | {"controller": None})
    try:
        outcome = await send(settings, f"campaign.{action}", {"campaign": name})
    except NoController:
        lines.append("no controller is running; it reads the new status when it starts")
        return Outcome(True, tuple(lines), data | {"controller": None})
    except LiveError as exc:
        raise LiveError(f"campaign {name} saved as {status}, but the controller: {exc}") from None
    lines.append(f"controller: {outcome.lines[0]}")
    return Outcome(outcome.ok, tuple(lines), data | {"controller": dict(outcome.data)})


async def tell_reload(settings: Any, ref: str) -> str | None:
    """After a campaign change in the database: ask a running controller to reload it."""
    if not str(settings.redis.url.get_secret_value()):
        return None
    try:
        outcome = await send(settings, "campaign.reload", {"campaign": ref})
    except NoController:
        return "no controller is running; it reads the change when it starts"
    except LiveError as exc:
        return f"saved, but the controller was not told: {exc}"
    return f"controller: {outcome.lines[0]}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


# --------------------------------------------------------------------------- queue status


def queue_rows(snap: LiveSnapshot) -> list[dict[str, Any]]:
    """Per campaign and inbound queue: calls ringing and waiting, agents by state."""
    rows: dict[str, dict[str, Any]] = {}

    def row(key: str) -> dict[str, Any]:
        counters = snap.counters.get(key, {})
        kind = "queue" if str(counters.get("kind", "")).endswith("queue") else "campaign"
        return rows.setdefault(
            key,
            {
                "key": key,
                "name": str(counters.get("name") or key),
                "kind": kind,
                "status": str(counters.get("status", "paused" if counters.get("paused") else "")),
                "ringing": 0,
                "waiting": 0,
                "agents": Counter(),
            },
        )

    for key in snap.counters:
        row(key)
    for call in snap.calls.values():
        key = str(call.get("campaign") or "")
        if not key:
            continue
        phase = str(call.get("phase") or call.get("state") or "").lower()
        if phase == "waiting":
            row(key)["waiting"] += 1
        elif phase in ("pending", "originating", "ringing", "answered"):
            row(key)["ringing"] += 1
    for key, counters in snap.counters.items():
        if row(key)["kind"] == "queue":
            row(key)["waiting"] = int(counters.get("waiting", 0) or 0)
    queue_key = next((k for k, r in rows.items() if r["kind"] == "queue"), "")
    for agent in snap.agents.values():
        key = str(agent.get("campaign") or "")
        work = str(agent.get("work") or "inbound_first")
        if work == "inbound_only" and queue_key:
            key = queue_key  # works no campaign: listed with the inbound queue it serves
        r = row(key or "-")
        r["agents"][str(agent.get("state", "?"))] += 1
        r.setdefault("work", Counter())[work] += 1
    out = []
    for r in rows.values():
        r["agents"] = dict(sorted(r["agents"].items()))
        r["work"] = dict(sorted(r.get("work", Counter()).items()))
        out.append(r)
    return sorted(out, key=lambda r: (r["kind"], r["name"]))


# --------------------------------------------------------------------------- wallboard


async def agent_names(settings: Any) -> dict[str, str]:
    """Agent number -> name from the record (the live rows carry numbers only)."""
    from sqlalchemy import select

    from dialer.db.database import Database
    from dialer.db.models import Agent

    db = Database.from_settings(settings)
    try:
        async with db.sessionmaker() as session:
            rows = (await session.execute(select(Agent.number, Agent.name))).all()
    finally:
        await db.close()
    return {number: name for number, name in rows if name}


def with_names(snap: LiveSnapshot, names: Mapping[str, str]) -> LiveSnapshot:
    """The snapshot with each agent's ``name`` filled in where the live row has none."""
    if not names:
        return snap
    agents = {
        k: (v if v.get("name") or k not in names else {**v, "name": names[k]})
        for k, v in snap.agents.items()
    }
    return dataclasses.replace(snap, agents=agents)


async def snapshot_named(settings: Any) -> LiveSnapshot:
    """The live state with agent names from the record when the database is reachable."""
    snap = await snapshot(settings)
    with contextlib.suppress(Exception):  # no database from this terminal: numbers only
        snap = with_names(snap, await agent_names(settings))
    return snap


async def floor_figures(
    settings: Any, day: date | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """From the database, per campaign name: rolling 30-day abandonment, the day's occupancy."""
    from dialer.db.database import Database
    from dialer.reports.queries import Period, abandonment, agents

    zone = settings.site.timezone
    today = day or datetime.now(ZoneInfo(zone)).date()
    period = Period(today, today, zone)
    db = Database.from_settings(settings)
    try:
        async with db.sessionmaker() as session:
            report = await abandonment(session, period)
            month = {
                r["Campaign"]: r["30d rate"] for r in report.as_dicts() if r["30d rate"] is not None
            }
            occupancy: dict[str, float] = {}
            for name in month:
                rows = (await agents(session, period, name)).as_dicts()
                busy = sum(r["Talk s"] + r["Wrap-up s"] for r in rows)
                available = sum(r["Logged in s"] - r["Paused s"] for r in rows)
                if available > 0:
                    occupancy[name] = busy / available
    finally:
        await db.close()
    return month, occupancy


async def run_wallboard(
    settings: Any, console: Any, *, refresh: float = 1.0, once: bool = False
) -> None:
    """Draw the wallboard every ``refresh`` seconds (full screen), or once."""
    from rich.live import Live

    from dialer.live.wallboard import Extras, PaceMeter, render

    meter = PaceMeter()
    month: dict[str, float] = {}
    occupancy: dict[str, float] = {}
    names: dict[str, str] = {}
    month_at = -1e9
    async with connect(settings) as (_bus, live):

        async def frame() -> Any:
            nonlocal month, occupancy, names, month_at
            snap = await live.snapshot()
            wall = time.time()
            if wall - month_at > 60:  # these move slowly; ask the database once a minute
                month_at = wall
                with contextlib.suppress(Exception):  # no database here: live figures only
                    month, occupancy = await floor_figures(settings)
                    names = await agent_names(settings)
            snap = with_names(snap, names)
            campaigns = {key: str(row.get("name")) for key, row in snap.counters.items()}
            now = snap.engine_now(wall)
            extras = Extras(
                pace=meter.update(snap, now),
                abandon_30d={k: month[n] for k, n in campaigns.items() if n in month},
                occupancy_today={k: occupancy[n] for k, n in campaigns.items() if n in occupancy},
            )
            return render(snap, now, extras=extras, wall=wall)

        if once:
            console.print(await frame())
            return
        with Live(console=console, screen=True, auto_refresh=False) as view:
            while True:
                view.update(await frame(), refresh=True)
                await asyncio.sleep(refresh)
