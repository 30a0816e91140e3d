"""The engine's Store port over the real record: ``dialer.db.Database`` + its LedgerWriter.

Writes (ledger rows, agent log lines, dispositions) go to the batched, idempotent, spooling
ledger writer and never block the engine; reads (hopper, campaigns, PINs) are awaited by the
engine's effects or by the FastAGI scripts, never by a transition.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select, update

from dialer.db import ledger as lg
from dialer.db.campaigns import CampaignConfig as DbCampaign
from dialer.db.campaigns import CampaignError, update_campaign
from dialer.db.database import Database
from dialer.db.models import Agent, AgentCampaign, AgentStateLog, Call, Lead
from dialer.domain.results import CallResult
from dialer.engine.ports import (
    DEFAULT_CALLBACK_MINUTES,
    DEFAULT_DISPOSITIONS,
    AgentLogRecord,
    CallOutcome,
    CallProgress,
    CallStarted,
    CampaignConfig,
    DispositionDef,
    DispositionRecord,
    LeadTicket,
    OpenCall,
    PinCheck,
)

if TYPE_CHECKING:
    from dialer.engine.dbthread import DbThread

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _now() -> datetime:
    return datetime.now(UTC)


def disposition_defs(items: Sequence[Mapping[str, Any]]) -> tuple[DispositionDef, ...]:
    """The campaign's disposition JSON as typed definitions (the defaults when empty)."""
    if not items:
        return DEFAULT_DISPOSITIONS
    out = []
    for d in items:
        minutes: float | None = None
        if d.get("callback_minutes") is not None:
            minutes = float(d["callback_minutes"])
        elif d.get("callback"):
            minutes = DEFAULT_CALLBACK_MINUTES
        out.append(
            DispositionDef(
                code=str(d["code"]),
                name=str(d.get("label") or d.get("name") or d["code"]),
                callback_minutes=minutes,
                final=bool(d.get("final")),
                dnc=bool(d.get("dnc")),
            )
        )
    return tuple(out)


def engine_campaign(c: DbCampaign) -> CampaignConfig:
    """The engine's view of a campaign row."""
    return CampaignConfig(
        id=c.id,
        name=c.name,
        status=c.status,
        dial_mode=c.dial_mode,
        ratio=c.ratio,
        pacing_target=c.pacing_target,
        caller_id=c.caller_id,
        trunk=c.trunk,
        ring_timeout=c.ring_timeout,
        amd_action=c.amd_action,
        amd_message=c.amd_message,
        notsure_is_live=c.notsure_is_live,
        recording=c.recording,
        wrapup_seconds=c.wrapup_seconds,
        dispositions=disposition_defs(c.dispositions),
        abandon_message=c.abandon_message,
        timezone=c.timezone,
    )


def _on_db_loop(fn: F) -> F:
    """Run the decorated coroutine method on the database's own loop when there is one."""

    @functools.wraps(fn)
    async def wrapper(self: DbStore, *args: Any, **kw: Any) -> Any:
        if self.dbt is None:
            return await fn(self, *args, **kw)
        return await self.dbt.call(functools.partial(fn, self, *args, **kw))

    return wrapper  # type: ignore[return-value]


class DbStore:
    """Store port backed by PostgreSQL or SQLite through ``dialer.db``.

    With a :class:`~dialer.engine.dbthread.DbThread` every query runs on the database's own
    thread and loop, and ``writer`` is its thread-safe proxy; without one, all runs here.
    """

    def __init__(self, db: Database, writer: Any, owner: str, dbt: DbThread | None = None) -> None:
        self.db = db
        self.writer = writer
        self.owner = owner
        self.dbt = dbt

    def _writer_here(self) -> Any:
        """The real LedgerWriter, for code already running on the database loop."""
        return self.dbt.writer if self.dbt is not None else self.writer

    @_on_db_loop
    async def running_campaigns(self) -> Sequence[CampaignConfig]:
        """Campaigns whose status is running."""
        return [engine_campaign(c) for c in await self.db.running_campaigns()]

    @_on_db_loop
    async def campaign(self, key: str) -> CampaignConfig | None:
        """One campaign by id or name."""
        try:
            return engine_campaign(await self.db.campaign_config(key))
        except CampaignError:
            return None

    @_on_db_loop
    async def set_campaign_status(self, campaign_id: int, status: str) -> None:
        """Persist a campaign's status."""
        async with self.db.transaction() as session:
            await update_campaign(session, campaign_id, status=status)

    @_on_db_loop
    async def reserve_leads(self, campaign_id: int, count: int) -> Sequence[LeadTicket]:
        """Up to ``count`` dialable leads reserved for this controller."""
        if not self._writer_here().dialling_allowed:
            return []  # the ledger is spooling: no new calls until it is written
        leads = await self.db.reserve_leads(campaign_id, count, _now(), self.owner)
        return [LeadTicket(x.lead_id, x.campaign_id, x.phone, x.attempts + 1) for x in leads]

    @_on_db_loop
    async def recheck(self, lead_id: int, phone: str) -> str | None:
        """The last look before the Originate: DNC, calling window, still ours."""
        return await self.db.recheck_before_dial(lead_id, phone, _now(), self.owner)

    @_on_db_loop
    async def live_answers(self, campaign_id: int) -> Sequence[tuple[float, bool]]:
        """The campaign's live answers over the last 30 days (seconds ago, abandoned?)."""
        now = _now()
        rows = await self.db.live_answers_since(campaign_id, now - timedelta(days=30))
        return [(max(0.0, (now - t).total_seconds()), abandoned) for t, abandoned in rows]

    @_on_db_loop
    async def release_leads(self, lead_ids: Sequence[int]) -> None:
        """Give back leads reserved but not dialled."""
        await self.db.release_leads(list(lead_ids), self.owner)

    def call_started(self, row: CallStarted) -> None:
        """Queue the opening ledger row."""
        self.writer.record(
            lg.CallStarted(
                call_id=row.call_id,
                at=row.originated_at,
                campaign_id=row.campaign_id,
                lead_id=row.lead_id,
                phone=row.phone,
                trunk=row.trunk,
                owner=row.owner,
                pacing_decision=dict(row.pacing_decision) if row.pacing_decision else None,
            )
        )

    def call_progress(self, row: CallProgress) -> None:
        """Queue a phase update (what restart recovery reads)."""
        self.writer.record(
            lg.CallUpdate(
                call_id=row.call_id,
                answered_at=row.answered_at,
                connected_at=row.connected_at,
                agent_number=row.agent_number,
                amd_status=row.amd_status or ("LIVE" if row.live else None),
            )
        )

    def call_ended(self, row: CallOutcome) -> None:
        """Queue the final row (the lead moves on per the retry rules)."""
        self.writer.record(
            lg.CallEnded(
                call_id=row.call_id,
                at=row.ended_at,
                result=row.result,
                hangup_cause=row.hangup_cause,
                hangup_cause_text=row.hangup_cause_text,
                hangup_leg=row.hangup_leg,
                ring_seconds=row.ring_seconds,
                wait_seconds=row.wait_seconds,
                talk_seconds=row.talk_seconds,
                answered_at=row.answered_at,
                connected_at=row.connected_at,
                agent_number=row.agent_number,
                amd_status=row.amd_status or None,
                amd_cause=row.amd_cause or None,
                handoff_ms=row.handoff_ms,
                recording_path=row.recording_path or None,
            )
        )

    def disposition(self, row: DispositionRecord) -> None:
        """Queue a disposition (callback and DNC follow from it)."""
        self.writer.record(
            lg.DispositionRecorded(
                call_id=row.call_id,
                code=row.code,
                at=row.at,
                agent_number=row.agent_number,
                lead_id=row.lead_id or None,
                callback_at=row.callback_at,
                callback_agent=row.agent_number if row.callback_at else None,
                dnc=row.dnc,
            )
        )
        self.writer.record(lg.CallUpdate(call_id=row.call_id, wrap_seconds=row.wrap_seconds))

    def agent_log(self, row: AgentLogRecord) -> None:
        """Queue one agent state log line."""
        self.writer.record(
            lg.AgentStateChanged(
                agent_number=row.agent_number,
                state=row.state,
                at=row.at,
                reason=row.reason,
                seat=row.seat,
                campaign_id=row.campaign_id,
                call_id=row.call_id,
                event_id=row.event_id,
            )
        )

    @_on_db_loop
    async def open_calls(self) -> Sequence[OpenCall]:
        """This controller's ledger rows that never got a final outcome."""
        async with self.db.sessionmaker() as s:
            rows = (
                await s.scalars(select(Call).where(Call.owner == self.owner, Call.final.is_(False)))
            ).all()
        return [
            OpenCall(
                call_id=r.call_id,
                campaign_id=r.campaign_id or 0,
                lead_id=r.lead_id or 0,
                answered=r.answered_at is not None,
                connected=r.connected_at is not None,
                live=True if r.amd_status in ("HUMAN", "LIVE") else None,
                agent_number=r.agent_number,
            )
            for r in rows
        ]

    @_on_db_loop
    async def check_pin(self, agent_number: str, pin: str) -> PinCheck:
        """Verify a PIN with the db's failure counting and lockout."""
        res = await self.db.verify_pin(agent_number, pin, _now())
        return PinCheck(res.ok, res.reason, res.agent_number, tuple(res.campaigns))

    @_on_db_loop
    async def close_agent_sessions(self, reason: str = "controller restart") -> int:
        """Log out (in the state log) every agent a previous run left logged in; how many.

        Agents still holding on their lines are adopted again after this, so each agent's log
        stays a chain of legal transitions across a restart.
        """
        async with self.db.sessionmaker() as s:
            last = (
                select(AgentStateLog.agent_number, func.max(AgentStateLog.id).label("last"))
                .group_by(AgentStateLog.agent_number)
                .subquery()
            )
            rows = (
                (await s.execute(select(AgentStateLog).join(last, AgentStateLog.id == last.c.last)))
                .scalars()
                .all()
            )
        now = _now()
        count = 0
        writer = self._writer_here()
        for row in rows:
            if row.state == "LOGGED_OUT":
                continue
            writer.record(
                lg.AgentStateChanged(
                    agent_number=row.agent_number,
                    state="LOGGED_OUT",
                    at=now,
                    reason=reason,
                    seat=row.seat,
                    campaign_id=row.campaign_id,
                )
            )
            count += 1
        if count:
            await writer.flush()
        return count

    @_on_db_loop
    async def release_stale_reservations(self) -> int:
        """Leads a previous run reserved but never dialled go back to the pool; how many."""
        open_leads = select(Call.lead_id).where(
            Call.owner == self.owner, Call.final.is_(False), Call.lead_id.is_not(None)
        )
        async with self.db.transaction() as s:
            result = await s.execute(
                update(Lead)
                .where(Lead.inflight_owner == self.owner, Lead.id.not_in(open_leads))
                .values(inflight_owner=None, inflight_until=None)
                .execution_options(synchronize_session=False)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    @_on_db_loop
    async def agent_campaigns(self, agent_number: str) -> tuple[int, ...]:
        """The campaigns an agent is assigned to."""
        async with self.db.sessionmaker() as s:
            rows = await s.scalars(
                select(AgentCampaign.campaign_id)
                .join(Agent, Agent.id == AgentCampaign.agent_id)
                .where(Agent.number == agent_number)
            )
            return tuple(sorted(rows.all()))

    @_on_db_loop
    async def save_agent_work(self, agent_number: str, work: str, campaign_id: int | None) -> None:
        """Keep an agent's work assignment (``queue.assign``); LookupError: no such agent."""
        async with self.db.transaction() as s:
            result = await s.execute(
                update(Agent)
                .where(Agent.number == agent_number)
                .values(work_mode=work, work_campaign_id=campaign_id)
                .execution_options(synchronize_session=False)
            )
            if not getattr(result, "rowcount", 0):
                raise LookupError(f"no agent {agent_number} in the record")

    @_on_db_loop
    async def agent_work(self) -> Mapping[str, tuple[str, int | None]]:
        """Agents whose kept work assignment is not the default: number -> (work, campaign)."""
        async with self.db.sessionmaker() as s:
            rows = await s.execute(
                select(Agent.number, Agent.work_mode, Agent.work_campaign_id).where(
                    (Agent.work_mode != "inbound_first") | Agent.work_campaign_id.is_not(None)
                )
            )
            return {number: (mode, campaign) for number, mode, campaign in rows.all()}

    async def flush(self) -> None:
        """Wait until everything queued is in the database (or the spool)."""
        await self.writer.flush()


__all__ = ["CallResult", "DbStore", "disposition_defs", "engine_campaign"]
