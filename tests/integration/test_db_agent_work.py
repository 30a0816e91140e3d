"""Agents' work assignment in the record (issue 9), on SQLite and PostgreSQL: kept, read back
at start, and the migration that adds it keeps every agent's campaigns."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select, text

from dialer.config import SiteSettings
from dialer.db.agents import add_agent
from dialer.db.campaigns import create_campaign
from dialer.db.database import Database
from dialer.db.engine import current_revision
from dialer.db.models import Agent, AgentCampaign, Campaign
from dialer.engine.store import DbStore


async def test_work_is_kept_and_read_back(database: Database) -> None:
    async with database.transaction() as s:
        await create_campaign(s, "spring")
        await create_campaign(s, "summer")
        for number in ("1001", "1002", "1003"):
            await add_agent(s, number, f"agent {number}", "2468", campaigns=["spring"])
        summer = await s.scalar(select(Campaign.id).where(Campaign.name == "summer"))
    store = DbStore(database, writer=None, owner="test")
    assert await store.agent_work() == {}  # everyone as before: blended, inbound first
    await store.save_agent_work("1001", "inbound_only", None)
    await store.save_agent_work("1002", "outbound_first", summer)
    await store.save_agent_work("1003", "inbound_first", None)  # back to the default
    assert await store.agent_work() == {
        "1001": ("inbound_only", None),
        "1002": ("outbound_first", summer),
    }
    with pytest.raises(LookupError, match="no agent 9999"):
        await store.save_agent_work("9999", "inbound_only", None)
    # A campaign deleted from the record leaves the agent with their work, no campaign.
    async with database.transaction() as s:
        await s.execute(delete(Campaign).where(Campaign.id == summer))
    assert (await store.agent_work())["1002"] == ("outbound_first", None)


async def test_migration_keeps_agents_and_their_campaigns(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url, site=SiteSettings(), spool_path=str(tmp_path / "spool.jsonl"))
    try:
        await db.upgrade("0002")
        async with db.transaction() as s:
            await create_campaign(s, "spring")
            await create_campaign(s, "summer")
            # The 0002 schema has no work columns: rows as a previous version wrote them.
            for number, name in (("1001", "Asha"), ("1002", "Ravi")):
                await s.execute(
                    text(
                        "INSERT INTO agents (number, name, pin_hash, disabled, failed_pins,"
                        " languages, skills, created_at)"
                        " VALUES (:n, :name, '', false, 0, '[]', '[]', CURRENT_TIMESTAMP)"
                    ),
                    {"n": number, "name": name},
                )
            rows = (await s.execute(text("SELECT number, id FROM agents"))).all()
            agents = {number: id_ for number, id_ in rows}
            campaigns = {c.name: c.id for c in (await s.scalars(select(Campaign))).all()}
            for number, name in (("1001", "spring"), ("1001", "summer"), ("1002", "summer")):
                await s.execute(
                    text("INSERT INTO agent_campaigns (agent_id, campaign_id) VALUES (:a, :c)"),
                    {"a": agents[number], "c": campaigns[name]},
                )
        await db.upgrade()
        assert await current_revision(db.engine) == "0003"
        async with db.sessionmaker() as s:
            rows = (await s.execute(select(Agent.number, Agent.name, Agent.work_mode))).all()
            links = (
                await s.execute(select(AgentCampaign.agent_id, AgentCampaign.campaign_id))
            ).all()
        assert sorted(rows) == [
            ("1001", "Asha", "inbound_first"),
            ("1002", "Ravi", "inbound_first"),
        ]
        assert sorted(links) == sorted(
            [
                (agents["1001"], campaigns["spring"]),
                (agents["1001"], campaigns["summer"]),
                (agents["1002"], campaigns["summer"]),
            ]
        )
    finally:
        await db.close()
