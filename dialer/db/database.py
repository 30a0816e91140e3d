"""The one object the rest of the system uses to reach the record.

Public API (all times aware UTC ``datetime``)::

    db = Database.from_settings(settings)           # or Database(url, site=settings.site)
    await db.upgrade()                              # Alembic migrations (dialer db upgrade)
    cfg = await db.campaign_config("spring")        # CampaignConfig (by id or name)
    cfgs = await db.running_campaigns()             # list[CampaignConfig]
    leads = await db.reserve_leads(cfg.id, n, now, owner)     # list[LeadToDial], reserved
    reason = await db.recheck_before_dial(lead.lead_id, lead.phone, now, owner)
                                                    # None = dial now; else why not ("dnc", ...)
    await db.release_lead(lead.lead_id, owner)      # reserved but not dialled (bool)
    await db.release_leads([ids], owner)            # several (count)
    check = await db.verify_pin(agent_number, pin, now)       # PinCheck (agent login)
    async with db.read() as session: ...            # lookups only (never the write lock)
    n = await db.recover_unfinished(owner, now)     # at start-up: close calls left open
    writer = db.ledger_writer(on_health=callback)   # LedgerWriter (see dialer.db.ledger)
    async with db.transaction() as session: ...     # anything else, one transaction
    await db.close()

``owner`` names the controller (stable across restarts of the same controller, different for
two controllers sharing the database).  Everything that writes call outcomes goes through
:class:`dialer.db.ledger.LedgerWriter`, so the AMI path never waits for the database.

SQLite (the embedded default) has one write lock.  Lookups go through :meth:`Database.read`, which
never takes it (WAL: readers do not wait for the writer).  Writes here take it at BEGIN and wait
``busy_timeout`` (dialer.db.engine); one that still finds it taken is retried in a fresh
transaction (nothing was written) and, after :data:`WRITE_ATTEMPTS`, fails with
:class:`DatabaseLocked`, which says what could not be written; it is never silently lost.
The ledger writer spools a batch the database refused (locked included) and replays it.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer.db import hopper
from dialer.db.campaigns import CampaignConfig, get_campaign
from dialer.db.engine import make_engine, make_sessionmaker, upgrade
from dialer.db.models import Call, Campaign, Lead
from dialer.domain.dialability import SiteFloor
from dialer.domain.results import CallResult

if TYPE_CHECKING:
    from dialer.config import Settings, SiteSettings
    from dialer.db.agents import PinCheck
    from dialer.db.hopper import LeadToDial
    from dialer.db.ledger import LedgerWriter

#: How long the distinct time zones of a campaign's leads are cached by the hopper.
ZONES_TTL = 60.0
#: How long the ledger writer reuses a campaign's retry rules before reading them again.
CAMPAIGN_TTL = 5.0
#: SQLite: tries of a write that finds the write lock taken (each waits busy_timeout first).
WRITE_ATTEMPTS = 4

log = logging.getLogger("dialer.db")
T = TypeVar("T")


class DatabaseLocked(RuntimeError):
    """A write that found SQLite's write lock taken on every try; nothing of it was written."""

    code = "database_locked"

    def __init__(self, what: str, attempts: int) -> None:
        from dialer.db.engine import SQLITE_BUSY_TIMEOUT_MS  # read now: tests may lower it

        super().__init__(
            f"database is locked: could not {what} after {attempts} tries "
            f"({SQLITE_BUSY_TIMEOUT_MS} ms each); another writer kept SQLite's write lock. "
            "SQLite suits the demo's 35 agents; use PostgreSQL for more."
        )
        self.what = what
        self.attempts = attempts


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "database table is locked" (SQLITE_BUSY, SQLITE_LOCKED)."""
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)


class Database:
    """Engine, sessions and the repository calls the engine needs, from one URL."""

    def __init__(
        self,
        url: str,
        *,
        site: SiteSettings | None = None,
        echo: bool = False,
        pool_size: int = 5,
        spool_path: str = "dialer-outcomes.spool",
        batch_size: int = 200,
        flush_interval: float = 0.2,
    ) -> None:
        from dialer.config import SiteSettings

        site = site or SiteSettings()
        self.url = url
        self.engine: AsyncEngine = make_engine(url, echo=echo, pool_size=pool_size)
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(self.engine)
        #: Sessions for transactions that write: on SQLite they take the write lock at BEGIN
        #: (see dialer.db.engine), so concurrent writers queue instead of failing.
        self.write_sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(
            self.engine.execution_options(sqlite_immediate=True)
        )
        self.floor = SiteFloor.parse(site.calling_floor_start, site.calling_floor_end)
        self.site_timezone = site.timezone
        self.country = site.country
        self.abandon_no_redial_hours = site.abandon_no_redial_hours
        #: A call keeps its lead reserved this long after the originate (the call may be long).
        self.call_hold = timedelta(hours=2)
        self._spool_path = spool_path
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._zones: dict[int, tuple[float, list[str]]] = {}
        self._campaigns: dict[int, tuple[float, CampaignConfig]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Database:
        """Build from ``Settings.database`` and ``Settings.site``."""
        dbs = settings.database
        return cls(
            dbs.url.get_secret_value(),
            site=settings.site,
            spool_path=dbs.spool_path,
            batch_size=dbs.batch_size,
            flush_interval=dbs.flush_interval,
            **kwargs,
        )

    @property
    def dialect(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return self.engine.dialect.name

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations shipped in the package."""
        await upgrade(self.engine, revision)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction: committed on success, rolled back on error."""
        async with self.write_sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for lookups only (rolled back at the end).

        On SQLite it begins deferred and never takes the write lock, so lookups (the login
        path: skills, campaigns) neither wait for the ledger writer nor hold up writers.
        """
        async with self.sessionmaker() as session:
            yield session

    async def retrying(
        self,
        work: Callable[[AsyncSession], Awaitable[T]],
        what: str,
        *,
        immediate: bool = True,
    ) -> T:
        """Run ``work`` in one transaction, again in a fresh one if SQLite reports it locked.

        A locked write rolled back whole, so trying again is safe.  ``immediate``: take the
        write lock at BEGIN (queue on busy_timeout); ``False`` for a mostly-read transaction
        that rarely writes (its write may then fail at once on a stale snapshot: retried too).
        After WRITE_ATTEMPTS tries: :class:`DatabaseLocked`.
        """
        maker = self.write_sessionmaker if immediate else self.sessionmaker
        attempts = WRITE_ATTEMPTS if self.dialect == "sqlite" else 1
        for attempt in range(1, attempts + 1):
            try:
                async with maker() as session, session.begin():
                    return await work(session)
            except OperationalError as exc:
                if not is_locked(exc):
                    raise
                if attempt >= attempts:
                    raise DatabaseLocked(what, attempts) from exc
                log.warning(
                    "database is locked (%s): try %d of %d failed, trying again",
                    what,
                    attempt,
                    attempts,
                )
                await asyncio.sleep(0.02 * 2**attempt)
        raise AssertionError("unreachable")

    def ledger_writer(self, **kwargs: Any) -> LedgerWriter:
        """A LedgerWriter with this database's spool path and batching settings."""
        from dialer.db.ledger import LedgerWriter

        kwargs.setdefault("batch_size", self._batch_size)
        kwargs.setdefault("flush_interval", self._flush_interval)
        return LedgerWriter(self, self._spool_path, **kwargs)

    # ------------------------------------------------------------------ campaigns

    async def campaign_config(
        self, ref: str | int, *, session: AsyncSession | None = None
    ) -> CampaignConfig:
        """The campaign snapshot by id or name (raises CampaignError if unknown)."""
        if session is not None:
            return CampaignConfig.from_row(await get_campaign(session, ref))
        async with self.sessionmaker() as s:
            return CampaignConfig.from_row(await get_campaign(s, ref))

    async def cached_campaign_config(
        self, campaign_id: int, session: AsyncSession
    ) -> CampaignConfig:
        """The campaign snapshot, cached for CAMPAIGN_TTL seconds (the ledger's hot path)."""
        now = _time.monotonic()
        hit = self._campaigns.get(campaign_id)
        if hit is None or now - hit[0] > CAMPAIGN_TTL:
            hit = (now, await self.campaign_config(campaign_id, session=session))
            self._campaigns[campaign_id] = hit
        return hit[1]

    async def running_campaigns(self) -> list[CampaignConfig]:
        """Campaigns whose status is ``running``."""
        async with self.sessionmaker() as s:
            rows = await s.scalars(select(Campaign).where(Campaign.status == "running"))
            return [CampaignConfig.from_row(r) for r in rows.all()]

    # ------------------------------------------------------------------ hopper

    async def _campaign_zones(self, session: AsyncSession, campaign_id: int) -> list[str]:
        cached = self._zones.get(campaign_id)
        now = _time.monotonic()
        if cached is None or now - cached[0] > ZONES_TTL:
            cached = (now, await hopper.campaign_zones(session, campaign_id))
            self._zones[campaign_id] = cached
        return cached[1]

    def forget_zones(self, campaign_id: int | None = None) -> None:
        """Drop the cached lead time zones (after an import into a running campaign)."""
        if campaign_id is None:
            self._zones.clear()
        else:
            self._zones.pop(campaign_id, None)

    async def reserve_leads(
        self,
        campaign_id: int,
        n: int,
        now: datetime,
        owner: str,
        *,
        hold: timedelta = hopper.DEFAULT_HOLD,
    ) -> list[LeadToDial]:
        """Up to ``n`` dialable leads, reserved for ``owner`` (callbacks due first, then priority).

        Safe for several controllers on PostgreSQL (SKIP LOCKED + in-flight mark in one
        transaction).  Reservations lapse after ``hold`` unless the call is recorded as started.
        """

        async def work(session: AsyncSession) -> list[LeadToDial]:
            campaign = CampaignConfig.from_row(await get_campaign(session, campaign_id))
            zones = await self._campaign_zones(session, campaign_id)
            return await hopper.reserve(
                session, campaign, n, now, owner, self.floor, zones, hold=hold
            )

        return await self.retrying(work, f"reserve leads of campaign {campaign_id}")

    async def recheck_before_dial(
        self, lead_id: int, phone: str, now: datetime, owner: str | None = None
    ) -> str | None:
        """None if the lead may be dialled now on ``phone``; otherwise the reason not to."""

        async def work(session: AsyncSession) -> str | None:
            return await hopper.recheck(session, lead_id, phone, now, self.floor, owner)

        # Mostly a read (it writes only to mark a lead found on the DNC list): deferred.
        return await self.retrying(work, f"re-check lead {lead_id}", immediate=False)

    async def live_answers_since(
        self, campaign_id: int, since: datetime
    ) -> list[tuple[datetime, bool]]:
        """The campaign's live answers since ``since``: (when answered, abandoned?) each.

        What the pacer's abandonment ledger counts (live answered, and which were abandoned),
        so a controller that starts mid-day or mid-month keeps the cap over the rolling windows.
        """
        live = [r.value for r in (CallResult.HUMAN, CallResult.ABANDONED)]
        when = func.coalesce(Call.answered_at, Call.ended_at, Call.originated_at)
        query = select(when, Call.result).where(
            Call.campaign_id == campaign_id,
            Call.direction == "outbound",
            Call.originated_at >= since,
            Call.result.in_(live),
        )
        async with self.read() as session:
            rows = (await session.execute(query)).all()
        return [(t, result == CallResult.ABANDONED.value) for t, result in rows if t is not None]

    async def release_lead(self, lead_id: int, owner: str | None = None) -> bool:
        """Give back a reserved lead that was not dialled; True if it was reserved."""
        return await self.release_leads([lead_id], owner) == 1

    async def release_leads(self, lead_ids: Sequence[int], owner: str | None = None) -> int:
        """Give back several reserved leads; the number released."""
        if not lead_ids:
            return 0

        async def work(session: AsyncSession) -> int:
            return await hopper.release(session, lead_ids, owner)

        return await self.retrying(work, f"release {len(lead_ids)} lead(s)")

    # ------------------------------------------------------------------ agents

    async def verify_pin(self, agent_number: str, pin: str, now: datetime) -> PinCheck:
        """Check an agent's PIN (counts failures, locks after repeated ones)."""
        from dialer.db.agents import verify_pin

        # On SQLite the check runs in a deferred transaction (the scrypt hash must not hold the
        # write lock), so its write (failure count, lockout) can find the ledger writer holding
        # the lock and fail at once with "database is locked" (a stale WAL snapshot does not
        # wait for busy_timeout).  Nothing was written then: try again in a fresh transaction.
        # A successful check of an agent without failures writes nothing (a pure read).
        async def work(session: AsyncSession) -> PinCheck:
            return await verify_pin(session, agent_number, pin, now)

        return await self.retrying(work, f"check the PIN of agent {agent_number}", immediate=False)

    # ------------------------------------------------------------------ recovery

    async def recover_unfinished(self, owner: str, now: datetime) -> int:
        """Close ``owner``'s calls that have no final row as LINK_LOST; release its leads.

        Call it at start-up, before dialling: a controller that died mid-call left them open.
        Goes through the ledger rules, so each lead's attempt is counted exactly once.
        """
        from dialer.db.ledger import CallEnded, apply_record

        async with self.sessionmaker() as session, session.begin():
            open_ids = (
                await session.scalars(
                    select(Call.call_id).where(Call.owner == owner, Call.final.is_(False))
                )
            ).all()
            for call_id in open_ids:
                await apply_record(
                    self, session, CallEnded(call_id=call_id, at=now, result=CallResult.LINK_LOST)
                )
            await session.execute(
                update(Lead)
                .where(Lead.inflight_owner == owner)
                .values(inflight_owner=None, inflight_until=None)
                .execution_options(synchronize_session=False)
            )
            return len(open_ids)
