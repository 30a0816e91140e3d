"""Checks shared by the end-to-end tests: what must hold in the record after a run."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from dialer.db.models import AgentStateLog, Call, Lead
from dialer.domain.agent import TABLE, AgentStatus
from dialer.domain.dialability import LeadStatus
from dialer.domain.results import CallResult


async def load(db: Any) -> tuple[list[Call], list[Lead], list[AgentStateLog]]:
    """Every call, lead and agent log row."""
    async with db.sessionmaker() as s:
        calls = list((await s.scalars(select(Call))).all())
        leads = list((await s.scalars(select(Lead))).all())
        logs = list((await s.scalars(select(AgentStateLog).order_by(AgentStateLog.id))).all())
    return calls, leads, logs


def check_ledger(calls: list[Call], leads: list[Lead], originates: int) -> None:
    """One final row per originate; attempts agree; no lead dialled twice at once."""
    assert len(calls) == originates, (len(calls), originates)
    open_rows = [c.call_id for c in calls if not c.final or c.result is None]
    assert not open_rows, f"calls without a final outcome: {open_rows[:5]}"
    for c in calls:
        CallResult(c.result)  # a known result
    by_lead: dict[int, list[Call]] = defaultdict(list)
    for c in calls:
        by_lead[int(c.lead_id or 0)].append(c)
    for lead in leads:
        mine = sorted(by_lead.get(lead.id, []), key=lambda c: c.originated_at or datetime.min)
        assert lead.attempts == len(mine), (lead.id, lead.attempts, len(mine))
        assert lead.status in {s.value for s in LeadStatus}, lead.status
        assert lead.inflight_owner is None, (lead.id, "still reserved")
        for a, b in itertools.pairwise(mine):
            assert a.ended_at is not None and b.originated_at is not None
            assert a.ended_at <= b.originated_at, f"lead {lead.id} dialled twice at once"


def check_agent_logs(logs: list[AgentStateLog]) -> dict[str, int]:
    """Every agent's log is a chain of legal transitions; returns rows per agent."""
    legal = {(a.value, b.value) for (a, _), b in TABLE.items()}
    by_agent: dict[str, list[str]] = defaultdict(list)
    for row in logs:
        by_agent[row.agent_number].append(row.state)
    for agent, states in by_agent.items():
        prev = AgentStatus.LOGGED_OUT.value
        for state in states:
            assert (prev, state) in legal, f"agent {agent}: {prev} -> {state} is not legal"
            prev = state
    return {k: len(v) for k, v in by_agent.items()}


def abandon_rate(calls: list[Call]) -> float:
    """Abandoned over live answered (the pacer's rate)."""
    live = sum(1 for c in calls if c.result in ("human", "abandoned"))
    abandoned = sum(1 for c in calls if c.result == "abandoned")
    return abandoned / live if live else 0.0


def now() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)
