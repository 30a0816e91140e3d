"""The hopper on SQLite and PostgreSQL: order, windows, DNC, retries, two controllers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from dialer.config import SiteSettings
from dialer.db.database import Database
from dialer.db.ledger import CallEnded, CallStarted, apply_record
from dialer.db.models import Callback, Dnc, Lead
from dialer.domain.results import CallResult
from tests.integration.db_support import (
    add_leads,
    at,
    make_campaign,
)

# 06:00 UTC = 11:30 in India: inside the site floor.
NOON_IST = at("2026-11-30T06:00")


async def test_migrations_up_from_empty_are_idempotent(database: Database) -> None:
    from dialer.db.engine import current_revision

    assert await current_revision(database.engine) == "0003"
    await database.upgrade()  # a second run changes nothing and does not fail
    assert await current_revision(database.engine) == "0003"


async def test_priority_order_and_no_lead_twice(database: Database) -> None:
    cid = await make_campaign(database)
    low = await add_leads(database, cid, 3, priority=0)
    high = await add_leads(database, cid, 2, priority=5, start=100)
    first = await database.reserve_leads(cid, 3, NOON_IST, "c1")
    assert [lead.lead_id for lead in first] == [*high, low[0]]
    second = await database.reserve_leads(cid, 10, NOON_IST, "c1")
    assert [lead.lead_id for lead in second] == low[1:]
    assert await database.reserve_leads(cid, 10, NOON_IST, "c1") == []


async def test_callbacks_due_come_first(database: Database) -> None:
    cid = await make_campaign(database)
    ids = await add_leads(database, cid, 3, priority=9)
    cb_lead = (await add_leads(database, cid, 1, start=50))[0]
    async with database.transaction() as s:
        s.add(
            Callback(
                campaign_id=cid,
                lead_id=cb_lead,
                agent_number="1001",
                due_at=NOON_IST - timedelta(minutes=1),
                status="pending",
            )
        )
        s.add(
            Callback(
                campaign_id=cid,
                lead_id=ids[2],
                agent_number=None,
                due_at=NOON_IST + timedelta(hours=1),
                status="pending",
            )
        )  # not due yet
    got = await database.reserve_leads(cid, 2, NOON_IST, "c1")
    assert got[0].lead_id == cb_lead and got[0].callback_agent == "1001"
    assert got[0].callback_id is not None
    assert got[1].lead_id == ids[0] and got[1].callback_id is None


async def test_campaign_not_running_hands_out_nothing(database: Database) -> None:
    cid = await make_campaign(database, status="paused")
    await add_leads(database, cid, 2)
    assert await database.reserve_leads(cid, 5, NOON_IST, "c1") == []


async def test_site_floor_and_lead_time_zone(database: Database) -> None:
    cid = await make_campaign(database)
    india = await add_leads(database, cid, 1, tz="Asia/Kolkata")
    london = await add_leads(database, cid, 1, tz="Europe/London", start=10)
    # 03:00 UTC: 08:30 in India (before the floor), 03:00 in London.
    assert await database.reserve_leads(cid, 5, at("2026-11-30T03:00"), "c1") == []
    # 03:30 UTC: 09:00 in India exactly (opens), still night in London.
    got = await database.reserve_leads(cid, 5, at("2026-11-30T03:30"), "c1")
    assert [g.lead_id for g in got] == india
    # 15:29 UTC: 20:59 India (open), 15:29 London (open).
    database.forget_zones()
    await database.release_leads(india)
    got = await database.reserve_leads(cid, 5, at("2026-11-30T15:29"), "c1")
    assert sorted(g.lead_id for g in got) == sorted(india + london)
    await database.release_leads(india + london)
    # 15:30 UTC: 21:00 India: closed (the window is [start, end)).
    got = await database.reserve_leads(cid, 5, at("2026-11-30T15:30"), "c1")
    assert [g.lead_id for g in got] == london


async def test_daylight_saving_moves_the_window(database: Database) -> None:
    cid = await make_campaign(database)
    ny = await add_leads(database, cid, 1, tz="America/New_York")
    # 13:30 UTC is 09:30 EDT in July (open) but 08:30 EST in January (closed).
    assert [
        g.lead_id for g in await database.reserve_leads(cid, 1, at("2026-07-01T13:30"), "a")
    ] == ny
    await database.release_leads(ny)
    assert await database.reserve_leads(cid, 1, at("2026-01-05T13:30"), "a") == []
    # Campaign window wider than the floor does not widen it; narrower narrows it.
    async with database.transaction() as s:
        from dialer.db.campaigns import update_campaign

        await update_campaign(s, cid, calling_start="10:00", calling_end="12:00")
    assert await database.reserve_leads(cid, 1, at("2026-01-05T14:30"), "a") == []  # 09:30 EST
    assert len(await database.reserve_leads(cid, 1, at("2026-01-05T15:00"), "a")) == 1


async def test_blackout_dates_and_days(database: Database) -> None:
    cid = await make_campaign(database, blackout_dates="2026-11-30", calling_days="mon-fri")
    await add_leads(database, cid, 1)
    assert await database.reserve_leads(cid, 1, NOON_IST, "a") == []  # Monday, blacked out
    assert await database.reserve_leads(cid, 1, at("2026-12-05T06:00"), "a") == []  # Saturday
    assert len(await database.reserve_leads(cid, 1, at("2026-12-01T06:00"), "a")) == 1


async def test_dnc_global_and_campaign_scrub(database: Database) -> None:
    cid = await make_campaign(database)
    other = await make_campaign(database, "other")
    ids = await add_leads(database, cid, 3)
    async with database.transaction() as s:
        s.add(Dnc(phone="+919876500000", campaign_id=None, source="registry"))
        s.add(Dnc(phone="+919876500001", campaign_id=cid, source="office"))
        s.add(Dnc(phone="+919876500002", campaign_id=other, source="office"))
    got = await database.reserve_leads(cid, 5, NOON_IST, "a")
    assert [g.lead_id for g in got] == [ids[2]]


async def test_dnc_added_between_pick_and_dial_is_honoured(database: Database) -> None:
    cid = await make_campaign(database)
    await add_leads(database, cid, 1)
    (lead,) = await database.reserve_leads(cid, 1, NOON_IST, "c1")
    assert await database.recheck_before_dial(lead.lead_id, lead.phone, NOON_IST, "c1") is None
    async with database.transaction() as s:
        s.add(Dnc(phone=lead.phone, campaign_id=None, source="manual"))
    assert await database.recheck_before_dial(lead.lead_id, lead.phone, NOON_IST, "c1") == "dnc"
    async with database.transaction() as s:
        row = await s.get(Lead, lead.lead_id)
        assert row is not None and row.status == "dnc" and row.inflight_owner is None


async def test_recheck_refuses_other_owner_and_closed_window(database: Database) -> None:
    cid = await make_campaign(database)
    await add_leads(database, cid, 1)
    (lead,) = await database.reserve_leads(cid, 1, NOON_IST, "c1")
    assert await database.recheck_before_dial(lead.lead_id, lead.phone, NOON_IST, "c2") == (
        "not_reserved"
    )
    late = at("2026-11-30T15:31")  # 21:01 IST
    assert await database.recheck_before_dial(lead.lead_id, lead.phone, late) == "window_hours"
    assert await database.recheck_before_dial(999999, "+1", NOON_IST) == "lead_gone"


async def test_reservation_lapses_and_release(database: Database) -> None:
    cid = await make_campaign(database)
    await add_leads(database, cid, 1)
    (lead,) = await database.reserve_leads(cid, 1, NOON_IST, "c1", hold=timedelta(seconds=30))
    assert await database.reserve_leads(cid, 1, NOON_IST + timedelta(seconds=29), "c2") == []
    again = await database.reserve_leads(cid, 1, NOON_IST + timedelta(seconds=31), "c2")
    assert [g.lead_id for g in again] == [lead.lead_id]
    assert not await database.release_lead(lead.lead_id, "c1")  # not c1's any more
    assert await database.release_lead(lead.lead_id, "c2")
    assert len(await database.reserve_leads(cid, 1, NOON_IST + timedelta(seconds=32), "c3")) == 1


async def _finish(db: Database, lead_id: int, call_id: str, result: CallResult, when):  # type: ignore[no-untyped-def]
    async with db.transaction() as s:
        await apply_record(
            db,
            s,
            CallStarted(
                call_id=call_id, at=when, lead_id=lead_id, campaign_id=None, phone="+9198765"
            ),
        )
        await apply_record(db, s, CallEnded(call_id=call_id, at=when, result=result))


async def test_retry_rules_after_results(database: Database) -> None:
    cid = await make_campaign(
        database, retry_rules={"busy": {"delay_minutes": 10, "max_attempts": 2}}
    )
    busy, invalid, human, abandoned = await add_leads(database, cid, 4)
    t0 = NOON_IST
    got = await database.reserve_leads(cid, 4, t0, "c1")
    assert len(got) == 4
    await _finish(database, busy, "b1", CallResult.BUSY, t0)
    await _finish(database, invalid, "i1", CallResult.INVALID_NUMBER, t0)
    await _finish(database, human, "h1", CallResult.HUMAN, t0)
    await _finish(database, abandoned, "a1", CallResult.ABANDONED, t0)
    assert await database.reserve_leads(cid, 4, t0 + timedelta(minutes=9), "c1") == []
    got = await database.reserve_leads(cid, 4, t0 + timedelta(minutes=10), "c1")
    assert [g.lead_id for g in got] == [busy]
    await _finish(database, busy, "b2", CallResult.BUSY, t0 + timedelta(minutes=10))
    # Busy twice = out of attempts; invalid never; human done; abandoned waits 72 h.
    later = t0 + timedelta(hours=71)
    assert await database.reserve_leads(cid, 4, later, "c1") == []
    got = await database.reserve_leads(cid, 4, t0 + timedelta(hours=72, minutes=1), "c1")
    assert [g.lead_id for g in got] == [abandoned]
    async with database.transaction() as s:
        rows = {r.id: r for r in (await s.scalars(select(Lead))).all()}
    assert (rows[busy].status, rows[busy].attempts) == ("done", 2)
    assert rows[invalid].status == "invalid" and rows[invalid].last_result == "invalid_number"
    assert rows[human].status == "done"


async def test_final_counted_once_even_if_replayed(database: Database) -> None:
    cid = await make_campaign(database)
    (lead,) = await add_leads(database, cid, 1)
    for _ in range(3):
        await _finish(database, lead, "x1", CallResult.NO_ANSWER, NOON_IST)
    async with database.transaction() as s:
        row = await s.get(Lead, lead)
        assert row is not None and row.attempts == 1


async def test_recover_unfinished_closes_open_calls(database: Database) -> None:
    cid = await make_campaign(database)
    (lead,) = await add_leads(database, cid, 1)
    await database.reserve_leads(cid, 1, NOON_IST, "c1")
    async with database.transaction() as s:
        await apply_record(
            database,
            s,
            CallStarted(call_id="open1", at=NOON_IST, lead_id=lead, campaign_id=cid, owner="c1"),
        )
    assert await database.recover_unfinished("c1", NOON_IST) == 1
    assert await database.recover_unfinished("c1", NOON_IST) == 0
    async with database.transaction() as s:
        row = await s.get(Lead, lead)
        assert row is not None and row.last_result == "link_lost" and row.inflight_owner is None


@pytest.mark.postgres
async def test_two_controllers_never_get_the_same_lead(pg_only_url: str) -> None:
    site = SiteSettings()
    setup = Database(pg_only_url, site=site)
    await setup.upgrade()
    cid = await make_campaign(setup)
    total = 600
    await add_leads(setup, cid, total)
    controllers = [Database(pg_only_url, site=site, pool_size=4) for _ in range(2)]

    async def run(db: Database, name: str) -> list[int]:
        got: list[int] = []

        async def worker() -> None:
            while True:
                batch = await db.reserve_leads(cid, 7, NOON_IST, name)
                if not batch:
                    return
                got.extend(lead.lead_id for lead in batch)

        await asyncio.gather(*(worker() for _ in range(3)))
        return got

    try:
        a, b = await asyncio.wait_for(
            asyncio.gather(run(controllers[0], "A"), run(controllers[1], "B")), 60
        )
    finally:
        for db in (*controllers, setup):
            await db.close()
    assert len(a) > 0 and len(b) > 0
    everything = a + b
    assert len(everything) == len(set(everything)) == total


async def test_concurrent_reservers_in_one_controller(database: Database) -> None:
    cid = await make_campaign(database)
    total = 300
    await add_leads(database, cid, total)
    got: list[int] = []

    async def worker() -> None:
        while batch := await database.reserve_leads(cid, 6, NOON_IST, "c1"):
            got.extend(lead.lead_id for lead in batch)

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(5))), 60)
    assert len(got) == len(set(got)) == total


async def test_campaign_time_zone_policy(database: Database) -> None:
    cid = await make_campaign(database, tz_policy="campaign", timezone="Asia/Kolkata")
    london = await add_leads(database, cid, 1, tz="Europe/London")
    # 05:00 UTC: 10:30 in India (open), 05:00 in London: the campaign's zone decides.
    got = await database.reserve_leads(cid, 1, at("2026-11-30T05:00"), "c1")
    assert [g.lead_id for g in got] == london
    await database.release_leads(london)
    # 16:00 UTC: 21:30 in India (closed) though it is 16:00 in London.
    assert await database.reserve_leads(cid, 1, at("2026-11-30T16:00"), "c1") == []


async def test_flush_before_start_is_an_error(database: Database) -> None:
    writer = database.ledger_writer()
    writer.record(CallEnded(call_id="x", at=NOON_IST, result=CallResult.BUSY))
    with pytest.raises(RuntimeError, match="before start"):
        await writer.flush()


async def test_late_outcome_does_not_free_another_controllers_reservation(
    database: Database,
) -> None:
    cid = await make_campaign(
        database, retry_rules={"busy": {"delay_minutes": 0, "max_attempts": 5}}
    )
    (lead,) = await add_leads(database, cid, 1)
    assert len(await database.reserve_leads(cid, 1, NOON_IST, "c1")) == 1
    async with database.transaction() as s:
        await apply_record(
            database,
            s,
            CallStarted(call_id="late", at=NOON_IST, lead_id=lead, campaign_id=cid, owner="c1"),
        )
    # The call holds the lead for call_hold (2 h), not just the hopper's 2 minutes.
    assert await database.reserve_leads(cid, 1, NOON_IST + timedelta(minutes=30), "c2") == []
    later = NOON_IST + database.call_hold + timedelta(minutes=1)
    (again,) = await database.reserve_leads(cid, 1, later, "c2")
    async with database.transaction() as s:  # c1's outcome arrives only now (an outage replay)
        await apply_record(database, s, CallEnded(call_id="late", at=later, result=CallResult.BUSY))
        # ... and a replayed start of that old call must not shorten c2's hold either.
        await apply_record(
            database,
            s,
            CallStarted(call_id="late", at=NOON_IST, lead_id=lead, campaign_id=cid, owner="c1"),
        )
    assert await database.recheck_before_dial(again.lead_id, again.phone, later, "c2") is None
    async with database.transaction() as s:
        row = await s.get(Lead, lead)
        assert row is not None and row.attempts == 1 and row.inflight_owner == "c2"
