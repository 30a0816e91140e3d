"""Supervisor reports on a seeded database, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dialer.db.campaigns import create_campaign
from dialer.db.database import Database
from dialer.db.models import Agent, AgentStateLog, Call, Disposition, Lead
from dialer.reports import output
from dialer.reports.queries import Period, abandonment, agents, coverage, daily

DAY = date(2026, 11, 28)
PERIOD = Period(DAY, DAY, "Asia/Kolkata")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


HIERARCHY = {
    "L1": ("D1", "Indore", "M1", "Mhow", "S1", "Kendra 1", "B1", "Booth 1"),
    "L2": ("D1", "Indore", "M1", "Mhow", "S1", "Kendra 1", "B1", "Booth 1"),
    "L3": ("D1", "Indore", "M1", "Mhow", "S2", "Kendra 2", "B2", "Booth 2"),
    "L4": ("D1", "Indore", "M2", "Sanwer", "S3", "Kendra 3", "B3", "Booth 3"),
    "L5": ("D1", "Indore", "M2", "Sanwer", "S3", "Kendra 3", "B4", "Booth 4"),
    "L6": ("D2", "Dewas", "M3", "Sonkatch", "S4", "Kendra 4", "B5", "बूथ 5"),
}


async def seed(db: Database) -> dict[str, Any]:
    n = 0
    async with db.transaction() as s:
        survey = await create_campaign(s, "survey", pacing_target=3.0)
        relay = await create_campaign(s, "relay", pacing_target=5.0)
        await s.flush()
        leads: dict[str, int] = {}
        for i, (key, h) in enumerate(HIERARCHY.items()):
            lead = Lead(
                campaign_id=survey.id,
                phone=f"+9198000000{i:02d}",
                timezone="Asia/Kolkata",
                district_code=h[0],
                district_name=h[1],
                mandal_code=h[2],
                mandal_name=h[3],
                shakti_kendra_code=h[4],
                shakti_kendra_name=h[5],
                booth_code=h[6],
                booth_name=h[7],
            )
            s.add(lead)
            await s.flush()
            leads[key] = lead.id
        s.add_all([Agent(number="1001", name="Asha"), Agent(number="1002", name="Ravi")])

        def call(when: str, result: str | None, **kw: Any) -> None:
            nonlocal n
            n += 1
            kw.setdefault("campaign_id", survey.id)
            s.add(Call(call_id=f"c{n}", originated_at=z(when), result=result, final=True, **kw))

        # 2026-11-28 in India (UTC+5:30): 10:00 IST is 04:30Z.
        call(
            "2026-11-28T04:30",
            "human",
            lead_id=leads["L1"],
            agent_number="1001",
            wait_seconds=0.5,
            talk_seconds=120,
            wrap_seconds=60,
        )
        call("2026-11-28T04:31", "abandoned", lead_id=leads["L2"])
        call("2026-11-28T04:32", "busy", lead_id=leads["L3"])
        call(
            "2026-11-28T04:33",
            "human",
            lead_id=leads["L4"],
            agent_number="1002",
            wait_seconds=1.5,
            talk_seconds=60,
        )
        call("2026-11-28T05:00", "machine", lead_id=leads["L4"])
        call("2026-11-28T05:01", "no_answer", lead_id=leads["L5"])
        call("2026-11-28T05:02", None, lead_id=leads["L6"])  # still in progress
        call(
            "2026-11-28T05:03", "human", direction="inbound", agent_number="1001", campaign_id=None
        )
        # 00:30 IST on the 28th is still the 27th in UTC: it belongs to the 28th.
        call("2026-11-27T19:00", "human", agent_number="1002", wait_seconds=1.0, talk_seconds=90)
        # 23:59 IST on the 28th is the 28th; 00:00 IST on the 29th is not.
        call("2026-11-28T18:29", "busy")
        call("2026-11-28T18:30", "busy")
        call("2026-11-28T06:00", "human", campaign_id=relay.id)
        # The 27th: 10 connected, 1 abandoned.  1 November: 5 and 5.  20 October: outside.
        for i in range(10):
            call(f"2026-11-27T06:{i:02d}", "human")
        call("2026-11-27T07:00", "abandoned")
        for i in range(5):
            call(f"2026-11-01T06:{i:02d}", "human")
            call(f"2026-11-01T07:{i:02d}", "abandoned")
        for i in range(50):
            call(f"2026-10-20T06:{i:02d}", "abandoned")

        def state(agent: str, when: str, st: str, reason: str = "") -> None:
            nonlocal n
            n += 1
            s.add(
                AgentStateLog(
                    event_id=f"e{n}", agent_number=agent, state=st, reason=reason, at=z(when)
                )
            )

        state("1001", "2026-11-28T03:30", "READY")
        state("1001", "2026-11-28T04:30", "TALKING")
        state("1001", "2026-11-28T04:32", "WRAPUP")
        state("1001", "2026-11-28T04:33", "PAUSED", "lunch")
        state("1001", "2026-11-28T05:03", "READY")
        state("1001", "2026-11-28T05:30", "LOGGED_OUT")
        state("1002", "2026-11-27T18:00", "READY")  # logged in before midnight IST
        state("1002", "2026-11-27T19:00", "TALKING")
        state("1002", "2026-11-27T19:01:30", "READY")
        state("1002", "2026-11-27T20:30", "LOGGED_OUT")
        s.add(
            Disposition(
                event_id="d1",
                call_id="c1",
                lead_id=leads["L1"],
                code="1",
                agent_number="1001",
                at=z("2026-11-28T04:33"),
            )
        )
        s.add(
            Disposition(
                event_id="d2",
                call_id="c4",
                lead_id=leads["L4"],
                code="2",
                agent_number="1002",
                at=z("2026-11-28T04:35"),
            )
        )
    return {"survey": survey.id, "relay": relay.id, "leads": leads}


async def test_daily(database: Database) -> None:
    await seed(database)
    async with database.sessionmaker() as s:
        report = await daily(s, PERIOD)
    rows = report.as_dicts()
    assert [(r["Day"], r["Campaign"]) for r in rows] == [
        ("2026-11-28", "survey"),
        ("2026-11-28", "relay"),
    ]
    survey = rows[0]
    assert survey["Dials"] == 9
    assert survey["Live answered"] == 4
    assert survey["Machine"] == 1
    assert survey["Connected"] == 3
    assert survey["Abandoned"] == 1
    assert survey["Abandon rate"] == pytest.approx(0.25)
    assert survey["Unanswered"] == 3  # two busy (one at 23:59 IST) and one no answer
    assert survey["In progress"] == 1
    assert survey["Avg wait s"] == pytest.approx(1.0)
    assert survey["Avg talk s"] == pytest.approx(90.0)
    assert rows[1]["Connected"] == 1 and rows[1]["Abandon rate"] == 0.0


async def test_abandonment_day_and_rolling_30_days(database: Database) -> None:
    await seed(database)
    async with database.sessionmaker() as s:
        report = await abandonment(s, PERIOD)
        week = await abandonment(s, Period(date(2026, 11, 27), DAY), campaign="survey")
    by_campaign = {r["Campaign"]: r for r in report.as_dicts()}
    survey = by_campaign["survey"]
    assert (survey["Live answered"], survey["Abandoned"]) == (4, 1)
    assert survey["Rate"] == pytest.approx(0.25)
    # 28th (4/1) + 27th (11/1) + 1 November (10/5); 20 October is outside the 30 days.
    assert (survey["30d live"], survey["30d abandoned"]) == (25, 7)
    assert survey["30d rate"] == pytest.approx(7 / 25)
    assert survey["Target"] == pytest.approx(0.03) and survey["Over target"] is True
    relay = by_campaign["relay"]
    assert relay["Rate"] == 0.0 and relay["Over target"] is False
    assert [(r["Day"], r["Live answered"], r["30d live"]) for r in week.as_dicts()] == [
        ("2026-11-27", 11, 21),
        ("2026-11-28", 4, 25),
    ]


async def test_agents_time_occupancy_and_pauses(database: Database) -> None:
    await seed(database)
    async with database.sessionmaker() as s:
        report = await agents(s, PERIOD)
        # Asked at 10:03 IST while agent 1001 is logged in: time counts up to now, not to
        # the end of the day.
        early = await agents(s, PERIOD, now=z("2026-11-28T04:33"))
    rows = {r["Agent"]: r for r in report.as_dicts()}
    first = {r["Agent"]: r for r in early.as_dicts()}["1001"]
    assert (first["Logged in s"], first["Talk s"], first["Wrap-up s"]) == (3780, 120, 60)
    asha = rows["1001"]
    assert asha["Name"] == "Asha" and asha["Calls"] == 2  # one outbound, one inbound
    assert (asha["Talk s"], asha["Wrap-up s"]) == (120, 60)
    assert (asha["Logged in s"], asha["Paused s"]) == (7200, 1800)
    assert asha["Occupancy"] == pytest.approx(180 / 5400)
    assert asha["Paused by reason"] == "lunch 0:30:00"
    ravi = rows["1002"]
    # Logged in at 23:30 IST on the 27th: only the part after midnight counts.
    assert (ravi["Logged in s"], ravi["Talk s"], ravi["Calls"]) == (7200, 90, 2)
    assert ravi["Occupancy"] == pytest.approx(90 / 7200)


async def test_coverage_rolls_up_the_hierarchy(database: Database) -> None:
    ids = await seed(database)
    async with database.sessionmaker() as s:
        booths = await coverage(s, PERIOD, campaign="survey", level="booth")
        districts = await coverage(s, PERIOD, campaign=str(ids["survey"]), level="district")
        with pytest.raises(LookupError):
            await coverage(s, PERIOD, campaign="nope")
    rows = [r[3:] for r in booths.rows]
    assert rows == [
        ("Booth 1 (B1)", 2, 2, 1, 0.5, "1:1"),
        ("Booth 2 (B2)", 1, 1, 0, 0.0, ""),
        ("Booth 3 (B3)", 1, 1, 1, 1.0, "2:1"),
        ("Booth 4 (B4)", 1, 1, 0, 0.0, ""),
        ("बूथ 5 (B5)", 1, 1, 0, 0.0, ""),
    ]
    assert booths.rows[0][:3] == ("Indore (D1)", "Mhow (M1)", "Kendra 1 (S1)")
    assert [r[:4] for r in districts.rows] == [("Indore (D1)", 5, 5, 2), ("Dewas (D2)", 1, 1, 0)]


async def test_outputs_table_csv_json_png(database: Database, tmp_path: Path) -> None:
    await seed(database)
    async with database.sessionmaker() as s:
        reports = [
            await daily(s, PERIOD),
            await abandonment(s, PERIOD),
            await agents(s, PERIOD),
            await coverage(s, PERIOD, level="booth"),
        ]
    for report in reports:
        console = Console(record=True, width=220, color_system=None)
        console.print(output.table(report))
        text = console.export_text()
        assert report.title in text
        csv_path = tmp_path / f"{report.name}.csv"
        output.write_csv(report, csv_path)
        with csv_path.open(encoding="utf-8-sig") as fh:
            got = list(csv.reader(fh))
        assert got[0] == list(report.columns) and len(got) == len(report.rows) + 1
        assert len(json.loads(output.to_json(report))["rows"]) == len(report.rows)
        png = tmp_path / f"{report.name}.png"
        output.write_png(report, png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    daily_text = _text(output.table(reports[0]))
    assert "25.0%" in daily_text  # the rate column reads as a percentage
    assert "90.0" in daily_text  # average talk in seconds
    assert "बूथ 5 (B5)" in (tmp_path / "coverage.csv").read_text(encoding="utf-8-sig")


def test_csv_cells_that_look_like_formulas_are_escaped(tmp_path: Path) -> None:
    from dialer.reports.queries import Report

    report = Report("x", "x", ("A", "B"), (("=cmd|' /C calc'!A0", 1), ("-2+3", None)))
    path = tmp_path / "x.csv"
    output.write_csv(report, path)
    rows = list(csv.reader(path.open(encoding="utf-8-sig")))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "1"] and rows[2] == ["'-2+3", ""]


def test_period_edges_in_the_site_zone() -> None:
    p = Period(DAY, DAY, "Asia/Kolkata")
    assert p.start().astimezone(UTC) == z("2026-11-27T18:30")
    assert p.end.astimezone(UTC) == z("2026-11-28T18:30")
    assert p.day_of(z("2026-11-28T18:29")) == DAY
    assert p.day_of(z("2026-11-28T18:30")) == DAY + timedelta(days=1)
    assert p.label() == "2026-11-28"


def _text(renderable: Any) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(renderable)
    return console.export_text()
