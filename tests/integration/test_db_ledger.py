"""The ledger writer: batches, idempotency, and a real database outage with spool replay."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from dialer.config import SiteSettings
from dialer.db.database import Database
from dialer.db.ledger import (
    AgentStateChanged,
    AuditRecorded,
    CallEnded,
    CallStarted,
    CallUpdate,
    DispositionRecorded,
    LedgerWriter,
    from_json,
    to_json,
)
from dialer.db.models import AgentStateLog, AuditLog, Call, Callback, Dnc, Lead
from dialer.domain.results import CallResult
from tests.integration.db_support import (
    TcpProxy,
    add_leads,
    at,
    make_campaign,
)

T0 = at("2026-11-30T06:00")


def call_records(call_id: str, lead_id: int | None, cid: int, i: int) -> list[object]:
    """What the engine records for one answered-and-connected call."""
    t = T0 + timedelta(seconds=i)
    return [
        CallStarted(
            call_id=call_id,
            at=t,
            campaign_id=cid,
            lead_id=lead_id,
            phone="+91987650",
            trunk="carrier",
            owner="c1",
            pacing_decision={"n": 3, "ready": 2},
        ),
        CallUpdate(
            call_id=call_id,
            answered_at=t + timedelta(seconds=5),
            amd_status="HUMAN",
            amd_cause="HUMAN-803-800",
        ),
        CallUpdate(
            call_id=call_id,
            connected_at=t + timedelta(seconds=6),
            agent_number="1001",
            handoff_ms=4.2,
        ),
        CallEnded(
            call_id=call_id,
            at=t + timedelta(seconds=60),
            result=CallResult.HUMAN,
            hangup_cause=16,
            hangup_cause_text="Normal Clearing",
            talk_seconds=54.0,
            ring_seconds=5.0,
        ),
        AgentStateChanged(
            agent_number="1001", state="WRAPUP", at=t + timedelta(seconds=60), call_id=call_id
        ),
    ]


async def counts(db: Database) -> dict[str, int]:
    async with db.transaction() as s:
        return {
            "calls": await s.scalar(select(func.count()).select_from(Call)) or 0,
            "final": await s.scalar(select(func.count()).where(Call.final.is_(True))) or 0,
            "states": await s.scalar(select(func.count()).select_from(AgentStateLog)) or 0,
            "attempts": await s.scalar(select(func.coalesce(func.sum(Lead.attempts), 0))) or 0,
        }


def test_records_round_trip_through_json() -> None:
    recs = [
        *call_records("c-1", 7, 1, 0),
        DispositionRecorded(
            call_id="c-1", code="2", at=T0, callback_at=T0 + timedelta(days=1), note="हिंदी में बात करें"
        ),
        AuditRecorded(
            actor="sup1", action="campaign.pause", at=T0, target="spring", params={"why": "lunch"}
        ),
    ]
    for rec in recs:
        assert from_json(to_json(rec)) == rec


async def test_writer_batches_and_is_idempotent(database: Database) -> None:
    cid = await make_campaign(database)
    leads = await add_leads(database, cid, 50)
    writer = database.ledger_writer(batch_size=16, flush_interval=0.01)
    await writer.start()
    for i, lead in enumerate(leads):
        for rec in call_records(f"call-{i}", lead, cid, i):
            writer.record(rec)  # type: ignore[arg-type]
    await asyncio.wait_for(writer.flush(), 30)
    # The same records again (a replay): nothing changes.
    for i, lead in enumerate(leads[:10]):
        for rec in call_records(f"call-{i}", lead, cid, i):
            writer.record(rec)  # type: ignore[arg-type]
    await asyncio.wait_for(writer.flush(), 30)
    await writer.stop()
    assert await counts(database) == {"calls": 50, "final": 50, "states": 60, "attempts": 50}
    async with database.transaction() as s:
        row = await s.get(Call, "call-3")
    assert row is not None and row.result == "human" and row.agent_number == "1001"
    assert row.pacing_decision == {"n": 3, "ready": 2} and row.handoff_ms == 4.2
    assert row.answered_at == T0 + timedelta(seconds=8) and row.amd_cause == "HUMAN-803-800"
    assert writer.dialling_allowed and writer.rejected == 0


async def test_disposition_schedules_callback_and_dnc(database: Database) -> None:
    cid = await make_campaign(database)
    a, b = await add_leads(database, cid, 2)
    writer = database.ledger_writer(flush_interval=0.01)
    await writer.start()
    cb = DispositionRecorded(
        call_id="d1",
        code="2",
        at=T0,
        lead_id=a,
        agent_number="1001",
        callback_at=T0 + timedelta(hours=3),
        callback_agent="1001",
    )
    dnc = DispositionRecorded(call_id="d2", code="4", at=T0, lead_id=b, dnc=True)
    for rec in (cb, dnc, cb, dnc):  # duplicates must not double the effects
        writer.record(rec)
    await asyncio.wait_for(writer.stop(), 30)
    async with database.transaction() as s:
        callbacks = (await s.scalars(select(Callback))).all()
        dncs = (await s.scalars(select(Dnc))).all()
        lead_b = await s.get(Lead, b)
    assert [(c.lead_id, c.agent_number) for c in callbacks] == [(a, "1001")]
    assert [(d.phone, d.campaign_id) for d in dncs] == [("+919876500001", cid)]
    assert lead_b is not None and lead_b.status == "dnc"


async def test_bad_record_is_set_aside_not_blocking(database: Database, tmp_path: Path) -> None:
    writer = database.ledger_writer(flush_interval=0.01)
    await writer.start()
    writer.record(AuditRecorded(actor="sup", action="ok-1", at=T0))
    writer.record(AuditRecorded(actor="x" * 500, action="too-long-actor", at=T0))
    writer.record(AuditRecorded(actor="sup", action="ok-2", at=T0))
    await asyncio.wait_for(writer.stop(), 30)
    async with database.transaction() as s:
        actions = (await s.scalars(select(AuditLog.action).order_by(AuditLog.id))).all()
    if database.dialect == "sqlite":  # SQLite does not enforce VARCHAR lengths
        assert list(actions) == ["ok-1", "too-long-actor", "ok-2"]
    else:
        assert list(actions) == ["ok-1", "ok-2"]
        assert writer.rejected == 1
        assert "too-long-actor" in writer.spool_path.with_suffix(".rejected").read_text()


@pytest.mark.postgres
async def test_outage_spools_then_replays_in_order(pg_only_url: str, tmp_path: Path) -> None:
    url = make_url(pg_only_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    db = Database(via_proxy, site=SiteSettings(), spool_path=str(tmp_path / "out.spool"))
    await db.upgrade()
    cid = await make_campaign(db)
    leads = await add_leads(db, cid, 30)
    health: list[bool] = []
    changed = asyncio.Event()

    def on_health(ok: bool) -> None:
        health.append(ok)
        changed.set()

    writer = db.ledger_writer(
        batch_size=8, flush_interval=0.01, retry_interval=0.05, on_health=on_health
    )
    await writer.start()
    try:
        for i in range(10):
            for rec in call_records(f"k-{i}", leads[i], cid, i):
                writer.record(rec)  # type: ignore[arg-type]
        await asyncio.wait_for(writer.flush(), 30)
        assert (await counts(db))["final"] == 10

        await proxy.cut()  # the database goes away, connections die mid-life
        # Calls in progress finish while it is down: their records go to the spool.
        for i in range(10, 30):
            for rec in call_records(f"k-{i}", leads[i], cid, i):
                writer.record(rec)  # type: ignore[arg-type]
            # A later update of an earlier call, to check order is kept on replay.
        writer.record(CallUpdate(call_id="k-12", disposition="1", wrap_seconds=9.0))
        await asyncio.wait_for(changed.wait(), 30)
        await asyncio.wait_for(writer.flush(), 30)
        assert health == [False] and not writer.dialling_allowed
        spooled = writer.spool_path.read_text("utf-8").splitlines()
        assert len(spooled) >= 100 and writer.spooled == len(spooled)
        assert json.loads(spooled[-1])["call_id"] == "k-12"

        changed.clear()
        await proxy.start()  # the database is back
        await asyncio.wait_for(writer.wait_healthy(), 30)
        await asyncio.wait_for(writer.flush(), 30)
        assert health == [False, True] and writer.dialling_allowed
        assert writer.spool_path.read_text("utf-8") == ""
        assert await counts(db) == {"calls": 30, "final": 30, "states": 30, "attempts": 30}
        async with db.transaction() as s:
            k12 = await s.get(Call, "k-12")
        assert k12 is not None and k12.disposition == "1" and k12.result == "human"
    finally:
        await writer.stop()
        await db.close()
        await proxy.cut() if proxy._server is not None else None


@pytest.mark.postgres
async def test_spool_left_by_a_crash_is_replayed_once(pg_only_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "out.spool"
    db = Database(pg_only_url, site=SiteSettings(), spool_path=str(spool))
    await db.upgrade()
    cid = await make_campaign(db)
    leads = await add_leads(db, cid, 5)
    # Two of the five were written before the crash; all five are in the spool.
    async with db.transaction() as s:
        from dialer.db.ledger import apply_record

        for i in range(2):
            for rec in call_records(f"z-{i}", leads[i], cid, i):
                await apply_record(db, s, rec)  # type: ignore[arg-type]
    lines = [to_json(rec) for i in range(5) for rec in call_records(f"z-{i}", leads[i], cid, i)]  # type: ignore[arg-type]
    spool.write_text("\n".join(lines) + "\n", "utf-8")
    writer = db.ledger_writer(flush_interval=0.01, retry_interval=0.05)
    assert isinstance(writer, LedgerWriter)
    await writer.start()
    assert not writer.dialling_allowed  # until the spool is replayed
    await asyncio.wait_for(writer.wait_healthy(), 30)
    await writer.stop()
    await db.close()
    db2 = Database(pg_only_url, site=SiteSettings())
    try:
        # Agent state rows get fresh event ids per call_records() call: not counted here.
        got = await counts(db2)
        assert (got["calls"], got["final"], got["attempts"]) == (5, 5, 5)
    finally:
        await db2.close()


@pytest.mark.postgres
async def test_backend_terminated_under_the_writer(pg_only_url: str, tmp_path: Path) -> None:
    db = Database(pg_only_url, site=SiteSettings(), spool_path=str(tmp_path / "s.spool"))
    await db.upgrade()
    cid = await make_campaign(db)
    leads = await add_leads(db, cid, 20)
    writer = db.ledger_writer(flush_interval=0.01, retry_interval=0.05)
    await writer.start()
    try:
        for i in range(10):
            for rec in call_records(f"t-{i}", leads[i], cid, i):
                writer.record(rec)  # type: ignore[arg-type]
        await asyncio.wait_for(writer.flush(), 30)
        name = make_url(pg_only_url).database
        admin = Database(
            make_url(pg_only_url).set(database="postgres").render_as_string(hide_password=False)
        )
        async with admin.engine.connect() as conn:
            killed = (
                await conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
            ).scalar()
        await admin.close()
        assert killed and killed >= 1
        for i in range(10, 20):
            for rec in call_records(f"t-{i}", leads[i], cid, i):
                writer.record(rec)  # type: ignore[arg-type]
        await asyncio.wait_for(writer.flush(), 30)
        await asyncio.wait_for(writer.wait_healthy(), 30)
        await asyncio.wait_for(writer.flush(), 30)
        assert await counts(db) == {"calls": 20, "final": 20, "states": 20, "attempts": 20}
    finally:
        await writer.stop()
        await db.close()


async def test_torn_spool_line_loses_only_itself(database: Database, tmp_path: Path) -> None:
    cid = await make_campaign(database)
    (lead,) = await add_leads(database, cid, 1)
    recs = call_records("torn-1", lead, cid, 0)
    spool = tmp_path / "spool.jsonl"
    good = [to_json(r) for r in recs[:2]]  # type: ignore[arg-type]
    # A crash in the middle of an append left half a line without its newline.
    spool.write_text("\n".join(good) + "\n" + to_json(recs[2])[:25], "utf-8")  # type: ignore[arg-type]
    LedgerWriter._append_lines(spool, [to_json(r) for r in recs[2:]])  # type: ignore[arg-type]
    writer = database.ledger_writer(flush_interval=0.01, retry_interval=0.05)
    await writer.start()
    await asyncio.wait_for(writer.wait_healthy(), 30)
    await asyncio.wait_for(writer.stop(), 30)
    assert writer.rejected == 1
    assert await counts(database) == {"calls": 1, "final": 1, "states": 1, "attempts": 1}


async def test_migrations_match_the_models(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from dialer.db.models import Base

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    async with database.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []
