"""The call ledger writer: batched, idempotent, and safe through a database outage.

Public API (the engine holds one :class:`LedgerWriter`)::

    writer = LedgerWriter(db, spool_path="dialer-outcomes.spool")
    await writer.start()                       # replays a spool left by an earlier outage
    writer.record(CallStarted(call_id=..., campaign_id=..., lead_id=..., phone=..., at=now))
    writer.record(CallUpdate(call_id=..., answered_at=..., amd_status="HUMAN"))
    writer.record(CallEnded(call_id=..., at=now, result=CallResult.BUSY, hangup_cause=17))
    writer.record(AgentStateChanged(agent_number="1001", state="READY", at=now))
    writer.dialling_allowed                    # False while the database is unreachable
    await writer.flush()                       # everything so far is in the DB or the spool
    await writer.stop()

``record`` never blocks and never raises for a database problem: it appends to an in-memory
queue; a background task writes batches (one transaction each, in order).  Every record is
idempotent, so writing one twice changes nothing: calls are upserted by ``call_id`` (= the AMI
ChannelId), and the lead update of a :class:`CallEnded` happens only when the row turns
``final`` (``UPDATE ... WHERE NOT final``); the other records carry an ``event_id`` that is
unique in its table.

When the database cannot be reached the writer sets ``dialling_allowed = False`` (and calls
``on_health(False)``): the engine stops launching calls, calls in progress finish, and their
records are appended to the spool file (JSON lines, fsync'd).  The writer probes every
``retry_interval`` seconds; when the database answers, the spool is replayed in order, then
the queue, and only then is dialling allowed again (``on_health(True)``).  A spool left by a
crash is replayed by :meth:`LedgerWriter.start`.  Records after a replay that dies half-way are
applied twice at worst, which idempotency makes harmless: nothing is lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AgentStateLog, AuditLog, Call, Callback, Dnc, Lead, utcnow
from dialer.domain.dialability import LeadStatus, decide_retry
from dialer.domain.results import CallResult

if TYPE_CHECKING:
    from dialer.db.database import Database

log = logging.getLogger(__name__)


def _event_id() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class CallStarted:
    """An originate was sent (or an inbound call arrived): the ledger row is created."""

    call_id: str
    at: datetime
    campaign_id: int | None = None
    lead_id: int | None = None
    phone: str = ""
    trunk: str = ""
    owner: str = ""
    direction: str = "outbound"
    pacing_decision: dict[str, Any] | None = None
    did: str = ""
    caller_number: str = ""


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """Facts learned during a call; only fields that are not None are written."""

    call_id: str
    answered_at: datetime | None = None
    connected_at: datetime | None = None
    agent_number: str | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    handoff_ms: float | None = None
    wait_seconds: float | None = None
    wrap_seconds: float | None = None
    disposition: str | None = None
    recording_path: str | None = None
    ivr_path: list[Any] | None = None
    ivr_answers: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The one final outcome of a call; also moves its lead on per the retry rules."""

    call_id: str
    at: datetime
    result: CallResult
    hangup_cause: int | None = None
    hangup_cause_text: str = ""
    hangup_leg: str = ""
    ring_seconds: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    answered_at: datetime | None = None
    connected_at: datetime | None = None
    agent_number: str | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    handoff_ms: float | None = None
    recording_path: str | None = None


@dataclass(frozen=True, slots=True)
class DispositionRecorded:
    """An agent's disposition; may schedule a callback or put the number on the campaign DNC."""

    call_id: str
    code: str
    at: datetime
    agent_number: str | None = None
    lead_id: int | None = None
    note: str = ""
    callback_at: datetime | None = None
    callback_agent: str | None = None
    dnc: bool = False
    event_id: str = field(default_factory=_event_id)


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """An agent state change: LOGGED_IN, READY, PAUSED (reason), WRAPUP, LOGGED_OUT ..."""

    agent_number: str
    state: str
    at: datetime
    reason: str = ""
    seat: str = ""
    campaign_id: int | None = None
    call_id: str | None = None
    event_id: str = field(default_factory=_event_id)


@dataclass(frozen=True, slots=True)
class AuditRecorded:
    """A supervisor action: who, what, on what, when, and the result."""

    actor: str
    action: str
    at: datetime
    target: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    result: str = "ok"
    event_id: str = field(default_factory=_event_id)


LedgerRecord = (
    CallStarted | CallUpdate | CallEnded | DispositionRecorded | AgentStateChanged | AuditRecorded
)
_TYPES: dict[str, type[Any]] = {
    t.__name__: t
    for t in (
        CallStarted,
        CallUpdate,
        CallEnded,
        DispositionRecorded,
        AgentStateChanged,
        AuditRecorded,
    )
}


def to_json(record: LedgerRecord) -> str:
    """One spool line for a record."""
    data: dict[str, Any] = {"type": type(record).__name__}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, CallResult):
            value = value.value
        data[f.name] = value
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def from_json(line: str) -> LedgerRecord:
    """Parse a spool line back into its record."""
    data = json.loads(line)
    cls = _TYPES[data.pop("type")]
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if value is not None and "datetime" in str(f.type):
            value = datetime.fromisoformat(value)
        elif value is not None and "CallResult" in str(f.type):
            value = CallResult(value)
        kwargs[f.name] = value
    record: LedgerRecord = cls(**kwargs)
    return record


# --------------------------------------------------------------------------- applying


# Hot-path statements are built once per (dialect, shape) and executed with parameters:
# building an upsert (its EXCLUDED alias) and its cache key each time cost more CPU than the
# database round trip.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _insert_for(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _upsert(
    session: AsyncSession,
    values: dict[str, Any],
    update_keys: Iterable[str],
    *,
    only_if_open: bool = False,
    returning: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """INSERT ... ON CONFLICT (call_id) DO UPDATE, as (statement, parameters).

    ``only_if_open``: the update applies only while the row is not final.
    """
    dialect = _dialect(session)
    keys = tuple(sorted({k for k in update_keys if k != "call_id"} | {"updated_at"}))
    cache_key = ("upsert", dialect, tuple(sorted(values)), keys, only_if_open, returning)
    stmt = _STATEMENTS.get(cache_key)
    if stmt is None:
        table = _table(Call)
        base = _insert_for(dialect, table)
        stmt = base.on_conflict_do_update(
            index_elements=["call_id"],
            set_={k: base.excluded[k] for k in keys},
            where=table.c.final.is_(False) if only_if_open else None,
        )
        if returning:
            stmt = stmt.returning(table.c.lead_id, table.c.direction, table.c.owner)
        _STATEMENTS[cache_key] = stmt
    return stmt, values


def _insert_ignore(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> Any:
    return _insert_for(_dialect(session), model).values(**values).on_conflict_do_nothing()


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build()
    return stmt


_CALL_DEFAULTS: dict[str, Any] = {
    "direction": "outbound",
    "owner": "",
    "phone": "",
    "trunk": "",
    "hangup_cause_text": "",
    "hangup_leg": "",
    "amd_status": "",
    "amd_cause": "",
    "recording_path": "",
    "did": "",
    "caller_number": "",
    "final": False,
}


def _call_values(call_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(_CALL_DEFAULTS)
    values.update(fields)
    values["call_id"] = call_id
    values["updated_at"] = utcnow()
    return values


def _set_fields(record: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    return {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(record)
        if f.name not in skip and getattr(record, f.name) is not None
    }


async def apply_record(db: Database, session: AsyncSession, record: LedgerRecord) -> None:
    """Write one record in the session's transaction (idempotent)."""
    if isinstance(record, CallStarted):
        fields = {
            "originated_at": record.at,
            "campaign_id": record.campaign_id,
            "lead_id": record.lead_id,
            "phone": record.phone,
            "trunk": record.trunk,
            "owner": record.owner,
            "direction": record.direction,
            "pacing_decision": record.pacing_decision,
            "did": record.did,
            "caller_number": record.caller_number,
        }
        await session.execute(*_upsert(session, _call_values(record.call_id, fields), fields))
        if record.lead_id is not None:
            # The call may outlive the hopper's short hold: keep the lead ours until it ends.
            # Only our own reservation, and only ever longer: a late replay must not shorten
            # (and so free) a reservation another controller holds by now.
            leads = _table(Lead)
            stmt = _cached(
                ("hold",),
                lambda: (
                    update(leads)
                    .where(
                        leads.c.id == bindparam("b_id"),
                        leads.c.inflight_owner == bindparam("b_owner"),
                        leads.c.inflight_until < bindparam("b_until"),
                    )
                    .values(inflight_until=bindparam("b_until"))
                ),
            )
            await session.execute(
                stmt,
                {
                    "b_id": record.lead_id,
                    "b_owner": record.owner,
                    "b_until": record.at + db.call_hold,
                },
            )
    elif isinstance(record, CallUpdate):
        fields = _set_fields(record, ("call_id",))
        await session.execute(*_upsert(session, _call_values(record.call_id, fields), fields))
    elif isinstance(record, CallEnded):
        await _apply_ended(db, session, record)
    elif isinstance(record, DispositionRecorded):
        await _apply_disposition(session, record)
    elif isinstance(record, AgentStateChanged):
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        dialect = _dialect(session)
        stmt = _cached(
            ("agent_log", dialect),
            lambda: _insert_for(dialect, _table(AgentStateLog)).on_conflict_do_nothing(),
        )
        await session.execute(stmt, values)
    elif isinstance(record, AuditRecorded):
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        await session.execute(_insert_ignore(session, AuditLog, values))
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a ledger record: {record!r}")


async def _apply_ended(db: Database, session: AsyncSession, record: CallEnded) -> None:
    fields = _set_fields(record, ("call_id", "at"))
    fields["result"] = record.result.value
    fields["ended_at"] = record.at
    fields["final"] = True
    # One statement: insert, or update only a row that is not final yet.  A row comes back
    # exactly when this record made the call final, so a replay changes nothing.
    stmt, params = _upsert(
        session, _call_values(record.call_id, fields), fields, only_if_open=True, returning=True
    )
    row = (await session.execute(stmt, params)).first()
    if row is None or row.lead_id is None or row.direction != "outbound":
        return  # already final (a replay), or not a lead's call
    await _advance_lead(db, session, row.lead_id, record, row.owner)


async def _advance_lead(
    db: Database, session: AsyncSession, lead_id: int, ended: CallEnded, owner: str
) -> None:
    """Count the attempt and decide the lead's next state; exactly once per call."""
    leads, callbacks = _table(Lead), _table(Callback)
    read = _cached(
        ("lead_read",),
        lambda: (
            select(leads.c.campaign_id, leads.c.attempts, leads.c.status, leads.c.inflight_owner)
            .where(leads.c.id == bindparam("b_id"))
            .with_for_update()
        ),
    )
    found = (await session.execute(read, {"b_id": lead_id})).first()
    if found is None:
        return
    campaign_id, attempts, status, holder = found
    campaign = await db.cached_campaign_config(campaign_id, session)
    attempts += 1
    decision = decide_retry(
        ended.result,
        attempts,
        ended.at,
        campaign.retry_rules,
        campaign_max_attempts=campaign.max_attempts,
        abandon_no_redial_hours=db.abandon_no_redial_hours,
    )
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_result": ended.result.value,
        "last_called_at": ended.at,
    }
    if holder is None or holder == owner or not owner:
        # Release our reservation, never one another controller took meanwhile.
        values.update(inflight_owner=None, inflight_until=None)
    if status in (LeadStatus.READY.value, LeadStatus.DONE.value):  # not dnc / invalid
        values["status"] = decision.status.value
        values["next_dial_after"] = decision.next_dial_after
    cols = tuple(sorted(values))
    write = _cached(
        ("lead_write", cols),
        lambda: (
            update(leads)
            .where(leads.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in cols})
        ),
    )
    await session.execute(write, {"b_id": lead_id, **{f"b_{c}": v for c, v in values.items()}})
    # Callbacks that were due: reached -> done; no more tries -> expired; else follow the lead.
    if ended.result is CallResult.HUMAN:
        change: dict[str, Any] = {"status": "done"}
    elif decision.status is not LeadStatus.READY or decision.next_dial_after is None:
        change = {"status": "expired"}
    else:
        change = {"due_at": decision.next_dial_after}
    key = next(iter(change))
    due = _cached(
        ("callbacks_due", key),
        lambda: (
            update(callbacks)
            .where(
                callbacks.c.lead_id == bindparam("b_lead"),
                callbacks.c.status == "pending",
                callbacks.c.due_at <= bindparam("b_at"),
            )
            .values({key: bindparam("b_value")})
        ),
    )
    await session.execute(due, {"b_lead": lead_id, "b_at": ended.at, "b_value": change[key]})


async def _apply_disposition(session: AsyncSession, record: DispositionRecorded) -> None:
    from dialer.db.models import Disposition

    values = {
        "event_id": record.event_id,
        "call_id": record.call_id,
        "lead_id": record.lead_id,
        "agent_number": record.agent_number,
        "code": record.code,
        "note": record.note,
        "at": record.at,
    }
    inserted = await session.execute(
        _insert_ignore(session, Disposition, values).returning(Disposition.id)
    )
    if inserted.first() is None:
        return  # a replay: the effects below were applied the first time
    await session.execute(
        update(Call).where(Call.call_id == record.call_id).values(disposition=record.code)
    )
    if record.lead_id is None:
        return
    lead = await session.get(Lead, record.lead_id)
    if lead is None:
        return
    if record.callback_at is not None:
        session.add(
            Callback(
                event_id=record.event_id,
                campaign_id=lead.campaign_id,
                lead_id=lead.id,
                agent_number=record.callback_agent,
                due_at=record.callback_at,
                status="pending",
                note=record.note,
                created_by=record.agent_number or "",
            )
        )
    if record.dnc:
        await session.execute(
            _insert_ignore(
                session,
                Dnc,
                {
                    "phone": lead.phone,
                    "campaign_id": lead.campaign_id,
                    "source": "disposition",
                    "note": f"agent {record.agent_number or '?'} on call {record.call_id}",
                    "added_at": record.at,
                },
            )
        )
        lead.status = LeadStatus.DNC.value
    await session.flush()


# --------------------------------------------------------------------------- the writer


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def is_outage(exc: BaseException) -> bool:
    """Whether an exception means "the database cannot be reached" (vs. a bad record)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


class LedgerWriter:
    """Writes ledger records in batches off the caller's path; spools them through outages."""

    def __init__(
        self,
        db: Database,
        spool_path: str | os.PathLike[str],
        *,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        retry_interval: float = 1.0,
        on_health: Callable[[bool], None] | None = None,
    ) -> None:
        self._db = db
        self._spool = Path(spool_path)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._on_health = on_health
        self._queue: deque[tuple[int, LedgerRecord]] = deque()
        self._seq = 0
        self._done_seq = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._healthy = True
        self._stopping = False
        self.written = 0  # records committed to the database
        self.spooled = 0  # records appended to the spool
        self.replayed = 0  # spool lines replayed into the database
        self.rejected = 0  # records the database refused (logged, kept in .rejected)

    # -- public ---------------------------------------------------------------------------

    @property
    def dialling_allowed(self) -> bool:
        """False while the database is unreachable or the spool is not yet replayed."""
        return self._healthy

    @property
    def pending(self) -> int:
        """Records queued in memory, not yet in the database or the spool."""
        return len(self._queue)

    @property
    def spool_path(self) -> Path:
        """Where outcomes go while the database is down."""
        return self._spool

    def record(self, record: LedgerRecord) -> None:
        """Queue a record; never blocks, never raises for database trouble."""
        self._seq += 1
        self._queue.append((self._seq, record))
        if len(self._queue) >= self._batch_size or not self._healthy:
            self._wake.set()

    async def start(self) -> None:
        """Start the background writer (replays a spool left over from before)."""
        if self._task is None:
            if self._spool_has_data():
                self._set_health(False)
            self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def flush(self) -> None:
        """Wait until every record queued so far is in the database or the spool.

        Bound it with ``asyncio.timeout`` where needed.
        """
        if self._task is None and self._done_seq < self._seq:
            raise RuntimeError("LedgerWriter.flush() before start(): nothing would write")
        target = self._seq
        self._wake.set()
        async with self._progress:
            await self._progress.wait_for(lambda: self._done_seq >= target)

    async def wait_healthy(self) -> None:
        """Wait until dialling is allowed again (spool replayed)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self._healthy)

    async def stop(self) -> None:
        """Write out what is queued (to the database or the spool), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None

    # -- internals ------------------------------------------------------------------------

    def _set_health(self, healthy: bool) -> None:
        if healthy == self._healthy:
            return
        self._healthy = healthy
        log.warning("ledger: database %s", "back, dialling allowed" if healthy else "UNREACHABLE")
        if self._on_health is not None:
            try:
                self._on_health(healthy)
            except Exception:  # a broken listener must not stop the ledger
                log.exception("ledger: on_health callback failed")

    async def _mark_done(self, seq: int) -> None:
        async with self._progress:
            self._done_seq = max(self._done_seq, seq)
            self._progress.notify_all()

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    async def _run(self) -> None:
        while True:
            try:
                if not self._healthy:
                    await self._while_down()
                elif self._queue:
                    await self._write_batch()
                elif self._stopping:
                    return
                else:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            except Exception:
                # Never die with records in hand: treat the surprise like an outage (spool,
                # stop dialling, keep probing) and say so loudly.
                log.exception("ledger: unexpected error; spooling until the database is back")
                self._set_health(False)
                await asyncio.sleep(self._retry_interval)
            if self._stopping and not self._healthy and not self._queue:
                return

    async def _write_batch(self) -> None:
        batch = [self._queue[i] for i in range(min(self._batch_size, len(self._queue)))]
        try:
            await self._commit_resilient([rec for _, rec in batch])
        except Exception as exc:
            if not is_outage(exc):
                raise
            # Nothing is popped: the batch goes to the spool (what got in is idempotent).
            log.warning("ledger: write failed, spooling: %s", exc.__class__.__name__)
            self._set_health(False)
            await self._notify()
            return
        for _ in batch:
            self._queue.popleft()
        await self._mark_done(batch[-1][0])

    async def _commit_resilient(self, records: list[LedgerRecord]) -> None:
        """Commit a batch; if the database refuses it (not an outage), set bad records aside."""
        try:
            await self._commit(records)
            self.written += len(records)
            return
        except Exception as exc:
            if is_outage(exc):
                raise
        for rec in records:
            try:
                await self._commit([rec])
                self.written += 1
            except Exception as exc:
                if is_outage(exc):
                    raise
                self.rejected += 1
                log.error("ledger: record refused (%s): %s", exc.__class__.__name__, rec)
                self._append_lines(self._spool.with_suffix(".rejected"), [to_json(rec)])

    async def _commit(self, records: list[LedgerRecord]) -> None:
        async with self._db.write_sessionmaker() as session, session.begin():
            for rec in records:
                await apply_record(self._db, session, rec)

    async def _while_down(self) -> None:
        """Move the queue to the spool, then try to replay; wait a while if that fails."""
        if self._queue:
            items = list(self._queue)
            self._append_lines(self._spool, [to_json(rec) for _, rec in items])
            self.spooled += len(items)
            self._queue.clear()
            await self._mark_done(items[-1][0])
        if self._stopping:
            return
        if await self._replay():
            self._set_health(True)
            await self._notify()
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._retry_interval)

    async def _replay(self) -> bool:
        """Replay the spool in order, in batches; True when it is empty afterwards."""
        if not self._spool_has_data():
            return await self._probe()
        text = self._spool.read_bytes().decode("utf-8", errors="replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        done = 0
        try:
            while done < len(lines):
                chunk = lines[done : done + self._batch_size]
                await self._commit_resilient(self._decode(chunk))
                done += len(chunk)
                self.replayed += len(chunk)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # Keep what is left; what was replayed is idempotent if replayed again.
            self._rewrite_spool(lines[done:])
            return False
        self._rewrite_spool([])
        return True

    def _decode(self, lines: list[str]) -> list[LedgerRecord]:
        """Spool lines to records; a damaged line (torn by a crash) is set aside, not fatal."""
        out: list[LedgerRecord] = []
        for line in lines:
            try:
                out.append(from_json(line))
            except (ValueError, KeyError, TypeError) as exc:
                self.rejected += 1
                log.error("ledger: unreadable spool line set aside (%s)", exc.__class__.__name__)
                self._append_lines(self._spool.with_suffix(".rejected"), [line])
        return out

    async def _probe(self) -> bool:
        try:
            async with self._db.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return True
        except Exception as exc:
            if is_outage(exc):
                return False
            raise

    def _spool_has_data(self) -> bool:
        try:
            return self._spool.stat().st_size > 0
        except FileNotFoundError:
            return False

    @staticmethod
    def _append_lines(path: Path, lines: list[str]) -> None:
        # Append-only and fsync'd: the spool must survive a crash of the controller too.
        with path.open("ab") as fh:
            torn = fh.tell() > 0 and _last_byte(path) != b"\n"
            # A line torn by a crash must not swallow the next record: start a fresh line.
            data = ("\n" if torn else "") + "".join(line + "\n" for line in lines)
            fh.write(data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    def _rewrite_spool(self, lines: list[str]) -> None:
        tmp = self._spool.with_suffix(self._spool.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._spool)
