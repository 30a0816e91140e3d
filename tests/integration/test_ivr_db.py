"""The IVR's records in the database (SQLite and PostgreSQL): ledger rows and callbacks dialled."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from dialer.agi.server import AgiRouter, AgiServer
from dialer.agi_scripts import ivr as ivr_script
from dialer.agi_scripts.inbound_desk import InboundDesk
from dialer.agi_scripts.inbound_store import DbInboundRecorder
from dialer.agi_scripts.ivr import IvrHandler, load_flows
from dialer.config import AgiSettings, InboundSettings, SiteSettings
from dialer.db.database import Database
from dialer.db.models import Call, Callback, Lead
from dialer.domain.inbound_queue import InboundQueue
from tests.integration.db_support import at, make_campaign
from tests.integration.fake_asterisk_ivr import FakeCaller

NOON_IST = at("2026-11-30T06:00")


async def run_calls(database: Database, callers: list[FakeCaller], **inbound: object) -> None:
    writer = database.ledger_writer(flush_interval=0.01)
    await writer.start()
    recorder = DbInboundRecorder(database, writer, SiteSettings(), owner="ctl-1")
    desk = InboundDesk(InboundQueue())
    handler = IvrHandler(
        load_flows(None),
        desk,
        recorder,
        InboundSettings(**inbound),  # type: ignore[arg-type]
        wall_clock=lambda: NOON_IST,
    )
    router = AgiRouter()
    router.add(ivr_script.ROUTE, handler)
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    try:
        async with asyncio.timeout(20):
            for caller in callers:
                await caller.run(server.port)
            await writer.flush()
    finally:
        await server.close()
        await writer.stop()


async def test_callback_request_is_dialled_by_the_hopper(database: Database) -> None:
    cid = await make_campaign(database, name="callbacks")
    # English, main menu 4: a callback for the caller's own number, due at once
    caller = FakeCaller(caller="09812345678", keys=["2", "4"], uniqueid="1795908192.201")
    await run_calls(database, [caller], callback_campaign="callbacks")
    async with database.transaction() as s:
        [cb] = (await s.scalars(select(Callback))).all()
        lead = await s.get(Lead, cb.lead_id)
        assert lead is not None and lead.phone == "+919812345678" and lead.language == "en"
        assert cb.campaign_id == cid and cb.status == "pending" and cb.created_by == "ivr"
        row = await s.get(Call, "1795908192.201")
        assert row is not None and row.direction == "inbound" and row.final
        assert row.result == "ivr_completed" and row.did == "5551000"
        assert row.ivr_path == ["language", "welcome", "menu", "callback", "callback-done"]
    # the hopper hands the callback out first, as soon as it is due
    got = await database.reserve_leads(cid, 5, NOON_IST + timedelta(seconds=1), "ctl-1")
    assert [g.lead_id for g in got] == [cb.lead_id]
    assert got[0].callback_id == cb.id and got[0].phone == "+919812345678"


async def test_survey_answers_and_hangups_land_in_the_ledger(database: Database) -> None:
    await make_campaign(database, name="callbacks")
    survey = FakeCaller(keys=["1", "2", "117", "2", "9"], uniqueid="c-survey")
    gone = FakeCaller(keys=["1", "HANGUP"], uniqueid="c-gone")
    await run_calls(database, [survey, gone])
    async with database.transaction() as s:
        row = await s.get(Call, "c-survey")
        assert row is not None and row.result == "ivr_completed"
        assert row.ivr_answers == {
            "booth": "117",
            "attended_meeting": "no",
            "active_volunteers": "9+",
        }
        assert row.caller_number == "+919812345678"
        gone_row = await s.get(Call, "c-gone")
        assert gone_row is not None and gone_row.result == "ivr_hangup" and gone_row.final
        assert gone_row.ivr_path == ["language", "welcome", "menu"]


async def test_callback_without_a_campaign_takes_the_failure_path(database: Database) -> None:
    # no campaign at all: the request cannot be stored, the caller is offered a message instead
    caller = FakeCaller(keys=["2", "4"], uniqueid="c-nocampaign")
    await run_calls(database, [caller])
    async with database.transaction() as s:
        row = await s.get(Call, "c-nocampaign")
        assert row is not None
        assert row.ivr_path == [
            "language",
            "welcome",
            "menu",
            "callback",
            "callback-unavailable",
            "message",
            "message-saved",
        ]
        assert row.result == "ivr_completed"
        assert row.recording_path == "dialer-messages/c-nocampaign-1.wav"
        assert (await s.scalars(select(Callback))).all() == []


async def test_agent_skills_come_from_languages_and_skills(database: Database) -> None:
    from dialer.db.models import Agent

    async with database.transaction() as s:
        s.add(Agent(number="1001", name="Asha", languages=["hi", "en"], skills=["survey"]))
    writer = database.ledger_writer()
    recorder = DbInboundRecorder(database, writer, SiteSettings())
    assert await recorder.agent_skills("1001") == frozenset({"hi", "en", "survey"})
    assert await recorder.agent_skills("9999") == frozenset()


async def test_ivr_report_from_the_ledger(database: Database) -> None:
    from dialer.reports.inbound import by_did, load_inbound

    await make_campaign(database, name="callbacks")
    answered_quickly = FakeCaller(keys=["2", "0"], uniqueid="r-1")
    gone = FakeCaller(keys=["2", "HANGUP"], uniqueid="r-2")
    await run_calls(database, [gone], max_wait_seconds=5.0)
    # one agent on the desk for the next call
    writer = database.ledger_writer(flush_interval=0.01)
    await writer.start()
    desk = InboundDesk(InboundQueue())
    desk.agent_ready("1001", "PJSIP/seat001-1", frozenset({"en"}))
    handler = IvrHandler(
        load_flows(None),
        desk,
        DbInboundRecorder(database, writer, SiteSettings()),
        InboundSettings(),
        wall_clock=lambda: NOON_IST,
    )
    router = AgiRouter()
    router.add(ivr_script.ROUTE, handler)
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    try:
        await asyncio.wait_for(answered_quickly.run(server.port), 10)
        await writer.flush()
    finally:
        await server.close()
        await writer.stop()
    rows = await load_inbound(
        database, NOON_IST - timedelta(hours=1), NOON_IST + timedelta(hours=1)
    )
    figures = by_did(rows, 20.0)
    total = figures["all"]
    assert total["calls"] == 2 and total["results"] == {"human": 1, "ivr_hangup": 1}
    assert (total["offered"], total["answered"], total["abandoned"], total["left"]) == (1, 1, 0, 0)
    assert total["service_level"] == 1.0 and figures["5551000"]["calls"] == 2
