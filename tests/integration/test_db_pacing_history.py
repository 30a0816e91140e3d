"""The record gives the pacer back a campaign's live answers (its abandonment ledger)."""

from __future__ import annotations

from datetime import timedelta

from dialer.db.database import Database
from dialer.db.models import Call
from tests.integration.db_support import at, make_campaign

T0 = at("2026-11-30T06:00")


async def test_live_answers_are_the_outbound_human_and_abandoned_calls(database: Database) -> None:
    spring = await make_campaign(database, "spring")
    other = await make_campaign(database, "autumn")
    rows = [
        # (campaign, direction, minutes before T0, answered?, result)
        (spring, "outbound", 10, True, "human"),
        (spring, "outbound", 20, True, "abandoned"),
        (spring, "outbound", 30, True, "machine"),  # not live: no agent was needed
        (spring, "outbound", 40, False, "no_answer"),
        (spring, "outbound", 31 * 24 * 60, True, "abandoned"),  # before the window
        (spring, "inbound", 5, True, "abandoned"),  # an inbound queue's, not the campaign's
        (other, "outbound", 15, True, "abandoned"),
        (spring, "outbound", 50, False, "abandoned"),  # no answered_at: the end time counts
    ]
    async with database.transaction() as s:
        for i, (cid, direction, minutes, answered, result) in enumerate(rows):
            t = T0 - timedelta(minutes=minutes)
            s.add(
                Call(
                    call_id=f"c{i}",
                    direction=direction,
                    campaign_id=cid,
                    originated_at=t - timedelta(seconds=8),
                    answered_at=t if answered else None,
                    ended_at=t + timedelta(seconds=30),
                    result=result,
                )
            )
    got = await database.live_answers_since(spring, T0 - timedelta(days=30))
    assert sorted(got) == sorted(
        [
            (T0 - timedelta(minutes=10), False),
            (T0 - timedelta(minutes=20), True),
            (T0 - timedelta(minutes=50) + timedelta(seconds=30), True),
        ]
    )
    assert all(t.tzinfo is not None for t, _ in got)
