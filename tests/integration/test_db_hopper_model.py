"""Property test: the hopper hands out exactly the leads a plain-Python model says are dialable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from dialer.config import SiteSettings
from dialer.db.database import Database
from dialer.db.models import Callback, Dnc, Lead
from dialer.domain.dialability import window_refusal
from tests.integration.db_support import make_campaign

ZONES = ["Asia/Kolkata", "Europe/London", "America/New_York", "Asia/Tokyo"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)

lead_st = st.fixed_dictionaries(
    {
        "tz": st.sampled_from(ZONES),
        "status": st.sampled_from(["ready", "ready", "ready", "done", "invalid", "dnc"]),
        "attempts": st.integers(0, 7),
        "priority": st.integers(0, 3),
        "next_in_min": st.none() | st.integers(-600, 600),
        "inflight_in_min": st.none() | st.integers(-10, 10),
        "on_dnc": st.sampled_from([None, None, None, "global", "campaign", "other"]),
    }
)


@pytest.fixture(scope="module")
def runner_and_db(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.Runner, Database, int, int]]:
    path: Path = tmp_path_factory.mktemp("hopper-model") / "h.db"
    runner = asyncio.Runner()
    db = Database(f"sqlite+aiosqlite:///{path}", site=SiteSettings())
    runner.run(db.upgrade())
    cid = runner.run(make_campaign(db, "model", max_attempts=6, calling_days="mon-sat"))
    other = runner.run(make_campaign(db, "other-model"))
    yield runner, db, cid, other
    runner.run(db.close())
    runner.close()


async def scenario(
    db: Database, cid: int, other: int, leads: list[dict], now: datetime
) -> tuple[set[int], set[int]]:  # type: ignore[type-arg]
    async with db.transaction() as s:
        await s.execute(delete(Callback))
        await s.execute(delete(Dnc))
        await s.execute(delete(Lead))
        rows = []
        for i, spec in enumerate(leads):
            phone = f"+9198765{i:05d}"
            nxt, fl = spec["next_in_min"], spec["inflight_in_min"]
            rows.append(
                Lead(
                    campaign_id=cid,
                    phone=phone,
                    timezone=spec["tz"],
                    status=spec["status"],
                    attempts=spec["attempts"],
                    priority=spec["priority"],
                    alt_phones=[],
                    custom={},
                    next_dial_after=None if nxt is None else now + timedelta(minutes=nxt),
                    inflight_owner=None if fl is None else "x",
                    inflight_until=None if fl is None else now + timedelta(minutes=fl),
                )
            )
            if spec["on_dnc"]:
                scope = {"global": None, "campaign": cid, "other": other}[spec["on_dnc"]]
                s.add(Dnc(phone=phone, campaign_id=scope, source="t"))
        s.add_all(rows)
        await s.flush()
        ids = [r.id for r in rows]
    db.forget_zones()
    cfg = await db.campaign_config(cid)
    expected = set()
    for lead_id, spec in zip(ids, leads, strict=True):
        nxt, fl = spec["next_in_min"], spec["inflight_in_min"]
        if (
            spec["status"] == "ready"
            and spec["attempts"] < 6
            and (nxt is None or nxt <= 0)
            and (fl is None or fl < 0)
            and spec["on_dnc"] in (None, "other")
            and window_refusal(now, spec["tz"], cfg.window, db.floor) is None
        ):
            expected.add(lead_id)
    got = await db.reserve_leads(cid, len(leads) + 5, now, "me")
    again = await db.reserve_leads(cid, len(leads) + 5, now, "me")
    assert again == []  # everything dialable was handed out once
    return expected, {g.lead_id for g in got}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(leads=st.lists(lead_st, min_size=1, max_size=25), minutes=st.integers(0, 14 * 24 * 60))
def test_hopper_matches_model(runner_and_db, leads, minutes) -> None:  # type: ignore[no-untyped-def]
    runner, db, cid, other = runner_and_db
    now = T0 + timedelta(minutes=minutes)  # two weeks across the DST change in New York/London
    expected, got = runner.run(scenario(db, cid, other, leads, now))
    assert got == expected
