"""Preview/manual dialling against the simulator (issue 8): the agent's ``*3`` dials for them.

The campaign has no pacer: nothing is dialled until the holding agent presses ``*3``; then one
lead is taken, the call is launched for that agent, and the answered person is bridged to them.
Numbers are pinned by the simulator's default profile: ``1xxx`` a live person, ``3xxx`` no answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from dialer.demo import Rig, RigSpec
from dialer.domain.agent import AgentStatus
from dialer.simpbx.profile import Dist

from .e2e_checks import check_agent_logs, check_ledger, load

pytestmark = pytest.mark.slow

S = AgentStatus
CALM = {"login_spread": 0.5, "break_every": 0.0, "wrong_pin_share": 0.0}


@asynccontextmanager
async def rig(tmp_path: Path, phones: tuple[str, ...], mode: str) -> AsyncIterator[Rig]:
    spec = RigSpec(
        agents=2,
        leads=len(phones),
        phones=phones,
        speed=10.0,
        dial_mode=mode,
        wrapup_seconds=4.0,
        agent_overrides=CALM,
        called_overrides={"talk": Dist(3.0), "party_hangs_up": 1.0},
    )
    r = Rig(spec, workdir=tmp_path)
    try:
        await r.start()
        yield r
    finally:
        await r.close()


async def holding(r: Rig, number: str) -> Any:
    """The simulated agent once READY and in the hold loop (WaitExten)."""
    e = r.engine
    a = next(x for x in r.sim.agents if x.spec.agent_number == number)
    await e.wait_for(
        lambda: (
            e.agents.get(number) is not None
            and e.agents[number].status is S.READY
            and a.ch is not None
            and a.ch.in_waitexten
        ),
        30,
    )
    return a


async def test_preview_star3_dials_for_that_agent_then_no_lead(tmp_path: Path) -> None:
    async with rig(tmp_path, ("1001",), "preview") as r:
        e = r.engine
        a = await holding(r, "1001")
        await holding(r, "1002")
        assert e.stats.originated == 0  # no pacer: nothing is dialled before *3
        assert await a.press("*3")
        await e.wait_for(lambda: e.agents["1001"].status is S.TALKING, 30)
        assert e.agents["1002"].status is S.READY  # the other agent was never offered it
        await e.wait_for(lambda: e.stats.ended == 1, 30)
        a = await holding(r, "1001")
        assert r.sim.stats_counter["agent_notices"] == 0  # answered: nothing to explain
        # The hopper is empty now: "no more calls", and the agent is READY again.
        before = e.agents["1001"].since
        assert await a.press("*3")
        await e.wait_for(
            lambda: e.agents["1001"].since > before and e.agents["1001"].status is S.READY, 20
        )
        assert "1001" not in e.agent_dial.held
        await holding(r, "1001")
        assert e.stats.originated == 1
        await r.stop_controller()
        calls, leads, logs = await load(r.db)
    check_ledger(calls, leads, 1)
    assert [(c.phone, c.result, c.agent_number) for c in calls] == [("1001", "human", "1001")]
    assert calls[0].handoff_ms is not None
    mine = [row.state for row in logs if row.agent_number == "1001"]
    assert mine[:5] == ["READY", "RESERVED", "TALKING", "WRAPUP", "READY"]
    assert mine[5:] == ["RESERVED", "READY"]  # the second *3 found no lead
    assert "RESERVED" not in [row.state for row in logs if row.agent_number == "1002"]
    check_agent_logs(logs)


async def test_manual_unanswered_call_gives_the_agent_back(tmp_path: Path) -> None:
    async with rig(tmp_path, ("3001",), "manual") as r:
        e = r.engine
        a = await holding(r, "1001")
        assert e.stats.originated == 0
        assert await a.press("*3")
        await e.wait_for(lambda: e.stats.originated == 1, 20)
        assert e.agents["1001"].status is S.RESERVED and e.agents["1001"].call_id
        await e.wait_for(lambda: e.stats.ended == 1, 60)
        # The agent hears why (no answer) in dialer-agent-notice, then holds again.
        await e.wait_for(lambda: r.sim.stats_counter["agent_notices"] == 1, 20)
        assert a.ch is not None
        assert a.ch.variables.get("DIALER_NOTICE") == e.settings.asterisk.preview_no_answer_prompt
        assert a.ch.variables.get("AGENT_STATE") == "READY"
        await holding(r, "1001")
        assert a.ch.context == "dialer-agent-loop"
        await r.stop_controller()
        calls, leads, logs = await load(r.db)
    check_ledger(calls, leads, 1)
    assert [(c.phone, c.result, c.agent_number) for c in calls] == [("3001", "no_answer", "1001")]
    mine = [(row.state, row.reason) for row in logs if row.agent_number == "1001"]
    assert [s for s, _ in mine] == ["READY", "RESERVED", "READY"], mine
    check_agent_logs(logs)
