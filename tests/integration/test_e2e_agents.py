"""Agents on (simulated) softphones against the real controller over TCP (issue 7's proof).

Each test scripts what the simulated agent types at the controller's GET DATA prompts and
which keys they press; everything else (dialplan, events, FastAGI) is the simulator acting
like Asterisk per docs/dialplan.md, and the real controller deciding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dialer.db.models import Agent as AgentRow
from dialer.db.models import Callback, Disposition
from dialer.demo import Rig, RigSpec, agent_pin
from dialer.domain.agent import AgentStatus
from dialer.engine.commands import Command
from dialer.simpbx.profile import Dist

from .e2e_checks import check_agent_logs, load

pytestmark = pytest.mark.slow

S = AgentStatus
INF = float("inf")
CALM = {"login_spread": 0.5, "break_every": 0.0, "wrong_pin_share": 0.0}


def scripted(agent: Any, answers: dict[str, list[tuple[str, float]]]) -> None:
    """Make a simulated agent type these answers (per prompt kind) before its own habits."""
    habit = agent.dtmf_for

    def dtmf_for(ch: Any, prompt: str) -> tuple[str, float]:
        if ch.context == "dialer-agent-wrapup":
            kind = "wrapup"
        elif "user" in prompt:
            kind = "user"
        elif "pass" in prompt:
            kind = "pass"
        else:
            kind = "other"
        queue = answers.get(kind)
        if queue:
            return queue.pop(0)
        return habit(ch, prompt)  # type: ignore[no-any-return]

    agent.dtmf_for = dtmf_for


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    agents: int = 1,
    phones: tuple[str, ...] = (),
    talk: float = 3.0,
    script: Callable[[Any], None] | None = None,
    wrapup_seconds: float = 6.0,
) -> AsyncIterator[Rig]:
    spec = RigSpec(
        agents=agents,
        leads=len(phones),
        phones=phones,
        speed=10.0,
        dial_mode="progressive",
        wrapup_seconds=wrapup_seconds,
        agent_overrides=CALM,
        called_overrides={"talk": Dist(talk), "party_hangs_up": 1.0},
    )
    r = Rig(spec, workdir=tmp_path)
    try:
        await r.start(on_sim=script)
        yield r
    finally:
        await r.close()


def sim_agent(r: Rig, number: str) -> Any:
    return next(a for a in r.sim.agents if a.spec.agent_number == number)


async def holding(r: Rig, number: str) -> Any:
    """Wait until the simulated agent sits in the hold loop (WaitExten); return it."""
    a = sim_agent(r, number)
    await r.engine.wait_for(lambda: a.ch is not None and a.ch.in_waitexten, 20)
    return a


async def state(r: Rig, number: str, want: AgentStatus, limit: float = 20.0) -> None:
    e = r.engine
    await e.wait_for(
        lambda: e.agents.get(number) is not None and e.agents[number].status is want, limit
    )


async def test_login_right_pin_wrong_pin_and_lockout(tmp_path: Path) -> None:
    wrong = "9999" if agent_pin("1001") != "9999" else "8888"

    wrong_pins = [(wrong + "#", 0.5)] * 12

    def script(sim: Any) -> None:
        # 1001 types a wrong PIN at every prompt: 3 tries per call, the simulator retries.
        scripted(sim_agent_of(sim, "1001"), {"pass": wrong_pins})

    async with rig(tmp_path, agents=2, script=script) as r:
        await state(r, "1002", S.READY)
        ch = sim_agent(r, "1002").ch
        await r.engine.wait_for(lambda: r.sim.getvar(ch, "AGENT_STATE") == "READY", 10)
        assert r.sim.getvar(ch, "AGENTID") == "1002"

        # 1001: five wrong PINs in a row lock the account; the right PIN is then refused too.
        async def locked() -> bool:
            async with r.db.sessionmaker() as s:
                row = await s.scalar(select(AgentRow).where(AgentRow.number == "1001"))
                return row is not None and row.locked_until is not None

        await r.engine.wait_for(lambda: len(wrong_pins) <= 12 - 6, 30)
        assert await locked()
        assert "1001" not in r.engine.agents or not r.engine.agents["1001"].logged_in
        a1 = sim_agent(r, "1001")
        scripted(a1, {"pass": [(agent_pin("1001") + "#", 0.5)] * 3})
        assert not await a1.login(), "a locked agent must not get in, even with the right PIN"
        assert "1001" not in r.engine.agents or not r.engine.agents["1001"].logged_in
        await r.stop_controller()
        _, _, logs = await load(r.db)
    assert {row.agent_number for row in logs} == {"1002"}


def sim_agent_of(sim: Any, number: str) -> Any:
    return next(a for a in sim.agents if a.spec.agent_number == number)


async def test_pause_and_unpause_by_dtmf_and_by_command(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await state(r, "1001", S.READY)
        a = await holding(r, "1001")
        assert await a.press("*1")
        await state(r, "1001", S.PAUSED)
        assert r.engine.agents["1001"].reason == "phone"
        await r.engine.wait_for(lambda: r.sim.getvar(a.ch, "AGENT_STATE") == "PAUSED", 10)
        await holding(r, "1001")
        assert await a.press("*2")
        await state(r, "1001", S.READY)
        reply = await r.engine.submit(Command("agent.pause", {"agent": "1001", "reason": "lunch"}))
        assert reply.ok and r.engine.agents["1001"].reason == "lunch"
        again = await r.engine.submit(Command("agent.unpause", {"agent": "1001"}))
        assert again.ok and r.engine.agents["1001"].status is S.READY
        twice = await r.engine.submit(Command("agent.unpause", {"agent": "1001"}))
        assert (twice.ok, twice.code) == (False, "illegal_transition")
        await r.stop_controller()
        _, _, logs = await load(r.db)
    states = [(row.state, row.reason) for row in logs if row.agent_number == "1001"]
    assert states[:5] == [
        ("READY", "login"),
        ("PAUSED", "phone"),
        ("READY", "unpause"),
        ("PAUSED", "lunch"),
        ("READY", "unpause"),
    ]
    check_agent_logs(logs)


async def test_calls_bridged_to_the_holding_agent_with_dispositions(tmp_path: Path) -> None:
    def script(sim: Any) -> None:
        scripted(
            sim_agent_of(sim, "1001"),
            {
                # call 1: an unknown code, then "2" (call back); call 2: "1"; call 3: nothing.
                "wrapup": [("77#", 0.5), ("2#", 0.5), ("1#", 0.5), ("", INF)],
            },
        )

    async with rig(tmp_path, phones=("7001", "7002", "7003"), script=script) as r:
        e = r.engine
        await e.wait_for(lambda: e.stats.ended >= 3 and e.agents["1001"].status is S.READY, 60)
        await r.stop_controller()
        calls, _, logs = await load(r.db)
        async with r.db.sessionmaker() as s:
            dispositions = {d.call_id: d.code for d in (await s.scalars(select(Disposition))).all()}
            callbacks = (await s.scalars(select(Callback))).all()
    by_phone = {c.phone: c for c in sorted(calls, key=lambda c: c.originated_at)}
    assert [by_phone[p].result for p in ("7001", "7002", "7003")] == ["human"] * 3
    assert all(c.agent_number == "1001" and c.handoff_ms is not None for c in calls)
    codes = [dispositions[by_phone[p].call_id] for p in ("7001", "7002", "7003")]
    assert codes == ["2", "1", "none"]
    assert len(callbacks) == 1 and callbacks[0].lead_id == by_phone["7001"].lead_id
    chain = [row.state for row in logs]
    assert chain[:5] == ["READY", "RESERVED", "TALKING", "WRAPUP", "READY"]
    check_agent_logs(logs)


async def test_agent_ends_the_customer_leg_and_keeps_the_line(tmp_path: Path) -> None:
    async with rig(tmp_path, phones=("7001",), talk=600.0) as r:
        await state(r, "1001", S.TALKING)
        a = sim_agent(r, "1001")
        line = a.ch
        assert await a.press("*0")
        await r.engine.wait_for(lambda: r.engine.stats.ended == 1, 20)
        await state(r, "1001", S.READY)
        assert a.ch is line and not line.dead  # the nailed-up line survived
        await r.stop_controller()
        calls, _, _ = await load(r.db)
    assert [c.result for c in calls] == ["human"]


async def test_logout_by_hanging_up(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await state(r, "1001", S.READY)
        await sim_agent(r, "1001").hang_up()
        await state(r, "1001", S.LOGGED_OUT)
        await r.stop_controller()
        _, _, logs = await load(r.db)
    assert [(row.state, row.reason) for row in logs][-1] == ("LOGGED_OUT", "hangup")


async def test_logout_by_code(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await state(r, "1001", S.READY)
        assert await (await holding(r, "1001")).press("*9")
        await state(r, "1001", S.LOGGED_OUT)
        await r.engine.wait_for(lambda: sim_agent(r, "1001").ch is None, 10)


async def test_agent_line_drops_mid_call(tmp_path: Path) -> None:
    async with rig(tmp_path, phones=("7001",), talk=600.0) as r:
        await state(r, "1001", S.TALKING)
        await sim_agent(r, "1001").hang_up()
        await state(r, "1001", S.LOGGED_OUT)
        await r.engine.wait_for(lambda: r.engine.stats.ended == 1, 20)
        await r.stop_controller()
        calls, _, logs = await load(r.db)
        async with r.db.sessionmaker() as s:
            codes = [d.code for d in (await s.scalars(select(Disposition))).all()]
    assert [c.result for c in calls] == ["human"]  # the person was connected: a human call
    assert codes == ["none"]  # no wrap-up happened: the default disposition
    assert [row.state for row in logs][-1] == "LOGGED_OUT"
    check_agent_logs(logs)
