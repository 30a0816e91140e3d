"""Leads import/export, DNC lists, agents and PINs, campaigns: on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dialer.db.agents import (
    LOCKOUT,
    MAX_FAILURES,
    AgentError,
    add_agent,
    import_agents,
    set_disabled,
    set_pin,
    verify_pin,
)
from dialer.db.campaigns import CampaignError, create_campaign, update_campaign
from dialer.db.database import Database
from dialer.db.dnc import add_numbers, check_number, import_dnc, remove_numbers
from dialer.db.leads_io import (
    LeadImportError,
    export_leads,
    import_leads,
    parse_mapping,
    report_path_for,
)
from dialer.db.models import Agent, Lead
from tests.integration.db_support import at, make_campaign

NOW = at("2026-11-30T06:00")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def leads_of(db: Database, cid: int) -> list[Lead]:
    async with db.sessionmaker() as s:
        return list(
            (await s.scalars(select(Lead).where(Lead.campaign_id == cid).order_by(Lead.id))).all()
        )


async def test_import_validates_dedupes_scrubs_and_reports(
    database: Database, tmp_path: Path
) -> None:
    cid = await make_campaign(database)
    await add_numbers(database, ["9876500009"], source="ncpr")
    async with database.transaction() as s:
        s.add(
            Lead(
                campaign_id=cid,
                phone="+919876500008",
                timezone="Asia/Kolkata",
                status="ready",
                attempts=0,
                alt_phones=[],
                custom={},
            )
        )
    src = write(
        tmp_path / "list.csv",
        "Mobile No,Full Name,Lang,Booth,Mandal,SK Code,Ward,Alternate\n"
        "98765 00001,राम कुमार,hi,B-17,उत्तर मंडल,SK9,w1,+91 98765 00011\n"
        "12345,Too Short,en,B1,,,,\n"
        "+919876500001,Dup Of Row 2,en,B1,,,,\n"
        "9876500008,Already In,hi,B1,,,,\n"
        "9876500009,On DNC,hi,B1,,,,\n"
        "+1 212 555 0100,New Yorker,en,,,,,\n"
        ",,,,,,,\n"
        "abc,Garbage,,,,,,\n",
    )
    summary = await import_leads(database, cid, src, default_region="IN")
    assert (summary.rows, summary.imported, summary.rejected) == (7, 2, 5)
    assert summary.reasons == {
        "invalid number": 1,
        "duplicate in file": 1,
        "already in the campaign": 1,
        "on a do-not-call list": 1,
        "unparseable number": 1,
    }
    report = report_path_for(src)
    assert summary.report == report and report.parent == src.parent
    with report.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["reason"]) for r in rows] == [
        ("3", "invalid number"),
        ("4", "duplicate of row 2"),
        ("5", "already in the campaign"),
        ("6", "on a do-not-call list"),
        ("9", "unparseable number"),
    ]
    leads = await leads_of(database, cid)
    ram = next(x for x in leads if x.phone == "+919876500001")
    assert ram.name == "राम कुमार" and ram.language == "hi"
    assert ram.booth_code == "B-17" and ram.mandal_name == "उत्तर मंडल"
    assert ram.shakti_kendra_code == "SK9" and ram.custom == {"Ward": "w1"}
    assert ram.alt_phones == ["+919876500011"] and ram.timezone == "Asia/Kolkata"
    ny = next(x for x in leads if x.phone == "+12125550100")
    assert ny.timezone == "America/New_York"


async def test_import_mapping_and_unreadable_file_changes_nothing(
    database: Database, tmp_path: Path
) -> None:
    cid = await make_campaign(database)
    src = write(tmp_path / "m.csv", "Contact;Who;Zone\n9876500001;अ;Asia/Kolkata\n")
    mapping = parse_mapping(["Contact=phone", "Who=name", "Zone=timezone"])
    summary = await import_leads(database, cid, src, mapping=mapping)
    assert summary.imported == 1 and summary.report is None
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Mobile,Name\n9876500002,\xff\xfe broken\n")
    with pytest.raises(LeadImportError, match="not UTF-8"):
        await import_leads(database, cid, bad)
    with pytest.raises(LeadImportError, match="cannot read"):
        await import_leads(database, cid, tmp_path / "missing.csv")
    with pytest.raises(LeadImportError, match="no phone column"):
        await import_leads(database, cid, write(tmp_path / "np.csv", "Name\nX\n"))
    with pytest.raises(LeadImportError, match="unknown field"):
        parse_mapping(["A=nope"])
    assert len(await leads_of(database, cid)) == 1


async def test_export_escapes_formulas_and_round_trips(database: Database, tmp_path: Path) -> None:
    cid = await make_campaign(database)
    other = await make_campaign(database, "copy")
    src = write(
        tmp_path / "in.csv",
        "phone,name,booth_name,note\n"
        '9876500001,=HYPERLINK("http://x"),@booth,-5\n'
        "9876500002,सीता देवी,+plus,ok\n"
        '9876500003,"tab\tback\\slash\nnew line",b,x\n',
    )
    await import_leads(database, cid, src)
    buf = io.StringIO()
    assert await export_leads(database, cid, buf) == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows[0]["name"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["booth_name"] == "'@booth" and rows[1]["booth_name"] == "'+plus"
    assert rows[0]["phone"] == "'+919876500001"
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@"))
    # The export imports back unchanged (escapes removed, state columns ignored).
    out = write(tmp_path / "export.csv", buf.getvalue())
    summary = await import_leads(database, other, out)
    assert summary.imported == 3 and summary.rejected == 0
    before = {
        (x.phone, x.name, x.booth_name, tuple(sorted(x.custom.items())))
        for x in await leads_of(database, cid)
    }
    after = {
        (x.phone, x.name, x.booth_name, tuple(sorted(x.custom.items())))
        for x in await leads_of(database, other)
    }
    assert before == after
    assert ("+919876500002", "सीता देवी", "+plus", (("note", "ok"),)) in after
    assert any(name == "tab\tback\\slash\nnew line" for _, name, _, _ in after)


async def test_dnc_add_remove_check_and_registry_import(database: Database, tmp_path: Path) -> None:
    cid = await make_campaign(database)
    assert await add_numbers(database, ["9876500001", "+919876500001"], source="office") == 1
    assert await add_numbers(database, ["9876500001"]) == 0
    assert await add_numbers(database, ["9876500002"], campaign="spring") == 1
    entries = await check_number(database, "+91 98765 00002", campaign="spring")
    assert [(e.scope, e.source) for e in entries] == [("spring", "manual")]
    assert await check_number(database, "9876500003") == []
    registry = write(
        tmp_path / "ncpr.txt",
        "9876500001\n9876500003\n9876500004\n12\n\n9876500004\n",
    )
    result = await import_dnc(database, registry, source="ncpr")
    assert (result.lines, result.added, result.already, result.invalid) == (5, 2, 2, 1)
    office = write(tmp_path / "office.csv", "Name,Number\nA,9876500005\nB,9876500006\n")
    result = await import_dnc(database, office, column="Number", campaign=str(cid))
    assert result.added == 2
    assert await remove_numbers(database, ["9876500001"]) == 1
    assert await check_number(database, "9876500001") == []


async def test_agents_pins_and_lockout(database: Database, tmp_path: Path) -> None:
    await make_campaign(database)
    async with database.transaction() as s:
        await add_agent(s, "1001", "रीना", "4321", languages=["hi", "en"], campaigns=["spring"])
        with pytest.raises(AgentError, match="already exists"):
            await add_agent(s, "1001", "again", "1234")
    with pytest.raises(AgentError, match="4-8 digits"):
        async with database.transaction() as s:
            await add_agent(s, "1002", "x", "12")
    async with database.transaction() as s:
        agent = (await s.scalars(select(Agent))).one()
        assert agent.pin_hash.startswith("scrypt$") and "4321" not in agent.pin_hash
    ok = await database.verify_pin("1001", "4321", NOW)
    assert ok.ok and ok.reason == "ok" and ok.languages == ("en", "hi") and len(ok.campaigns) == 1
    assert (await database.verify_pin("9999", "4321", NOW)).reason == "unknown"
    for i in range(MAX_FAILURES - 1):
        check = await database.verify_pin("1001", "0000", NOW)
        assert (check.reason, check.failures) == ("wrong_pin", i + 1)
    locked = await database.verify_pin("1001", "0000", NOW)
    assert locked.reason == "locked" and locked.locked_until == NOW + LOCKOUT
    # Locked: even the right PIN is refused until the lockout ends.
    assert (await database.verify_pin("1001", "4321", NOW + timedelta(minutes=1))).reason == (
        "locked"
    )
    assert (await database.verify_pin("1001", "4321", NOW + LOCKOUT)).ok
    async with database.transaction() as s:
        await set_disabled(s, "1001")
    assert (await database.verify_pin("1001", "4321", NOW)).reason == "disabled"
    async with database.transaction() as s:
        await set_disabled(s, "1001", False)
        await set_pin(s, "1001", "55667788")
    assert (await database.verify_pin("1001", "55667788", NOW)).ok
    # verify_pin with a caller's session (the FastAGI handler's way).
    async with database.transaction() as s:
        assert (await verify_pin(s, "1001", "4321", NOW)).reason == "wrong_pin"
    csv_file = write(
        tmp_path / "staff.csv",
        "number,name,pin,languages,campaigns\n2001,A,1111,hi;en,spring\n2002,B,,,\n",
    )
    async with database.transaction() as s:
        result = await import_agents(s, csv_file)
    assert result.added == 2 and list(result.generated_pins) == ["2002"]
    assert (await database.verify_pin("2002", result.generated_pins["2002"], NOW)).ok
    bad = write(tmp_path / "bad.csv", "number,name,pin\n3001,A,1111\nxx,B,2222\n")
    with pytest.raises(AgentError, match="line 3"):
        async with database.transaction() as s:
            await import_agents(s, bad)
    async with database.sessionmaker() as s:
        assert await s.scalar(select(Agent).where(Agent.number == "3001")) is None


async def test_campaign_validation(database: Database) -> None:
    async with database.transaction() as s:
        row = await create_campaign(
            s,
            "c1",
            dial_mode="ratio",
            ratio="2.5",
            calling_days="mon-fri",
            blackout_dates="2026-12-25, 2026-01-26",
        )
        assert row.ratio == 2.5 and row.calling_days == "mon,tue,wed,thu,fri"
        assert row.blackout_dates == ["2026-01-26", "2026-12-25"]
        assert row.status == "draft"
    for bad in (
        {"dial_mode": "turbo"},
        {"calling_start": "22:00"},
        {"timezone": "Mars/Olympus"},
        {"retry_rules": {"busy": {"delay_minutes": "x"}}},
        {"ratio": 0},
        {"unknown": 1},
    ):
        with pytest.raises(CampaignError):
            async with database.transaction() as s:
                await update_campaign(s, "c1", **bad)
    cfg = await database.campaign_config("c1")
    assert cfg.dial_mode == "ratio" and cfg.window.days == frozenset(range(5))
