"""Inbound callers in the real engine: the queue in the single writer, blending with outbound.

The engine runs with fake ports (tests/unit/engine_fakes.py); the IVR runs on a real FastAGI
server on loopback, driven by the scripted Asterisk peer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from dialer.agi.server import AgiRouter, AgiServer
from dialer.agi_scripts import ivr as ivr_script
from dialer.agi_scripts.ivr import IvrHandler, MemoryRecorder, load_flows
from dialer.config import (
    AgiSettings,
    AsteriskSettings,
    EngineSettings,
    InboundSettings,
    Settings,
    TrunkSettings,
)
from dialer.domain.agent import AgentStatus
from dialer.engine.commands import Command
from dialer.engine.core import Engine
from dialer.engine.inbound import EngineDesk
from dialer.engine.inputs import AmiLink, LoginIn
from dialer.engine.ports import CampaignConfig
from dialer.live.state import MemoryLive
from dialer.protocol.ami import Message
from tests.integration.fake_asterisk_ivr import FakeCaller
from tests.unit.engine_fakes import FakeAmi, FakeStore

OPEN = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
HINDI_CHAN = "PJSIP/seat001-00000001"
ENGLISH_CHAN = "PJSIP/seat002-00000002"


@dataclass
class Rig:
    engine: Engine
    store: FakeStore
    ami: FakeAmi
    server: AgiServer
    recorder: MemoryRecorder
    ticks: list[float]


def settings(**inbound: float) -> Settings:
    trunk = TrunkSettings(name="carrier", dial_template="Local/{number}@sim", max_cps=100)
    return Settings(
        asterisk=AsteriskSettings(trunks=(trunk,)),
        engine=EngineSettings(abandon_after_seconds=0.4, tick_interval=0.02),
        inbound=InboundSettings(**{"max_wait_seconds": 20.0, **inbound}),  # type: ignore[arg-type]
    )


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    inbound = getattr(request, "param", {})
    store = FakeStore()
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode="progressive", wrapup_seconds=5)
    store.leads = {i: f"+9155510{i:02d}" for i in range(1, 9)}
    ami = FakeAmi()
    engine = Engine(settings(**inbound), store, ami, live=MemoryLive())
    ticks: list[float] = []
    on_tick = engine._on_tick

    def counting_tick() -> None:
        ticks.append(engine.clock.now())
        on_tick()

    engine._on_tick = counting_tick  # type: ignore[method-assign]
    task = asyncio.create_task(engine.run())
    engine.add_campaign(store.campaigns_[1])
    engine.post(AmiLink(True))
    recorder = MemoryRecorder()
    handler = IvrHandler(
        load_flows(None),
        EngineDesk(engine),
        recorder,
        engine.settings.inbound,
        wall_clock=lambda: OPEN,
    )
    router = AgiRouter()
    router.add(ivr_script.ROUTE, handler)
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    yield Rig(engine, store, ami, server, recorder, ticks)
    await server.close()
    await engine.stop(grace=0)
    await asyncio.wait_for(task, 5)


async def until(engine: Engine, pred: Callable[[], bool], limit: float = 5.0) -> None:
    async def loop() -> None:
        while not pred():
            await engine.barrier()
            await asyncio.sleep(0)  # let effect tasks run between barriers

    await asyncio.wait_for(loop(), limit)


async def login(engine: Engine, agent: str, chan: str, *, paused: bool) -> None:
    reply = await engine.ask(lambda f: LoginIn(agent, chan, "seat", (1,), paused, f))
    assert reply.ok, reply


def ev(name: str, **headers: str) -> Message:
    return Message.build([("Event", name), *headers.items()])


async def test_waiting_caller_gets_the_agent_before_outbound(rig: Rig) -> None:
    engine = rig.engine
    await login(engine, "1001", HINDI_CHAN, paused=True)
    caller = FakeCaller(keys=["2", "0"], hold_bridge=True)
    call = asyncio.ensure_future(caller.run(rig.server.port))
    await caller.wait_for("EXEC StartMusicOnHold")
    await until(engine, lambda: len(engine.inbound.queue) == 1)
    assert rig.ami.originates() == []
    # the agent becomes READY: the waiting caller takes them, the pacer launches nothing
    await engine.submit(Command("agent.unpause", {"agent": "1001"}))
    a = engine.agents["1001"]
    assert a.status is AgentStatus.RESERVED and a.call_id == caller.uniqueid
    await caller.wait_for(f"EXEC Bridge {HINDI_CHAN},hF(dialer-agent-wrapup^s^1)")
    await until(engine, lambda: engine.agents["1001"].status is AgentStatus.TALKING)
    n = len(rig.ticks)
    await until(engine, lambda: len(rig.ticks) >= n + 5)
    assert rig.ami.originates() == []  # a reserved/talking agent is not dialled for
    # the caller leaves; the agent goes to wrap-up (BridgeLeave, as for outbound)
    caller.release_bridge.set()
    await asyncio.wait_for(call, 5)
    engine.on_ami_event(ev("BridgeLeave", BridgeUniqueid="b1", Channel=HINDI_CHAN))
    await until(engine, lambda: engine.agents["1001"].status is AgentStatus.WRAPUP)
    # the agent's disposition of an inbound call is recorded against the caller's call id
    done = await engine.submit(Command("agent.disposition", {"agent": "1001", "code": "1"}))
    assert done.ok, done
    assert [d.call_id for d in rig.store.dispositions] == [caller.uniqueid]
    assert engine.agents["1001"].status is AgentStatus.READY
    [rec] = rig.recorder.calls
    assert rec.result == "answered" and rec.agent == "1001"
    f = engine.inbound.figures()
    assert (f["offered"], f["answered"], f["waiting"], f["handing"]) == (1, 1, 0, 0)
    states = [r.state for r in rig.store.agent_rows if r.agent_number == "1001"]
    assert states == ["PAUSED", "READY", "RESERVED", "TALKING", "WRAPUP", "READY"]
    # the wallboard's row for the queue follows within a few ticks
    live = engine.live
    assert isinstance(live, MemoryLive)

    async def published() -> dict[str, object]:
        return dict((await live.snapshot()).counters.get("inbound:main", {}))

    async with asyncio.timeout(5):
        while (await published()).get("answered") != 1:
            await engine.barrier()
    row = await published()
    assert row["kind"] == "inbound_queue" and row["offered"] == 1 and row["waiting"] == 0
    # the wallboard shows it in its inbound queues table
    from dialer.live.wallboard import queues_table

    table = queues_table(await live.snapshot())
    assert table is not None and table.row_count == 1


@pytest.mark.parametrize(
    "rig", [{"hold_outbound_after_seconds": 0.1, "skill_relax_seconds": 0.0}], indirect=True
)
async def test_long_inbound_wait_holds_outbound_launches(rig: Rig) -> None:
    engine = rig.engine
    known = {"1001": frozenset({"hi"}), "1002": frozenset({"en"})}

    async def skills_of(agent: str) -> frozenset[str]:  # as the database would answer
        return known[agent]

    engine.inbound.skills_loader = skills_of
    await login(engine, "1001", HINDI_CHAN, paused=True)  # the only Hindi speaker, on a break
    await until(engine, lambda: "1001" in engine.inbound.skills)
    caller = FakeCaller(keys=["1", "0"])  # Hindi, wants a person
    call = asyncio.ensure_future(caller.run(rig.server.port))
    await caller.wait_for("EXEC StartMusicOnHold")
    # while she waits, the pacer sees her as a live call waiting for the next free agent
    await until(engine, lambda: len(engine.inbound.queue) == 1)
    snap = engine.snapshot(1, engine.clock.now())
    assert len(engine.inbound.pacing_view(snap).waiting) == len(snap.waiting) + 1
    await until(engine, lambda: engine.inbound.hold_outbound(engine.clock.now()))
    # an English agent logs in: they cannot take the Hindi caller, and while she waits
    # longer than the threshold the pacer launches nothing for them
    await login(engine, "1002", ENGLISH_CHAN, paused=False)
    n = len(rig.ticks)
    await until(engine, lambda: len(rig.ticks) >= n + 10)
    assert engine.agents["1002"].status is AgentStatus.READY
    assert rig.ami.originates() == []
    # the Hindi agent is back: she is served, the hold ends and outbound resumes for 1002
    await engine.submit(Command("agent.unpause", {"agent": "1001"}))
    assert engine.agents["1001"].status is AgentStatus.RESERVED
    await asyncio.wait_for(call, 5)
    await until(engine, lambda: len(rig.ami.originates()) >= 1)
    assert rig.recorder.calls[0].result == "answered" and rig.recorder.calls[0].agent == "1001"


async def test_vanished_agent_is_logged_out_and_the_caller_keeps_her_place(rig: Rig) -> None:
    engine = rig.engine
    await login(engine, "1001", HINDI_CHAN, paused=True)
    await login(engine, "1002", ENGLISH_CHAN, paused=True)
    caller = FakeCaller(keys=["2", "0"], bridge_results=["NONEXISTENT", "SUCCESS"])
    call = asyncio.ensure_future(caller.run(rig.server.port))
    await caller.wait_for("EXEC StartMusicOnHold")
    await until(engine, lambda: len(engine.inbound.queue) == 1)
    await engine.submit(Command("agent.unpause", {"agent": "1001"}))
    await caller.wait_for(f"EXEC Bridge {HINDI_CHAN}")
    await until(engine, lambda: engine.agents["1001"].status is AgentStatus.LOGGED_OUT)
    await engine.submit(Command("agent.unpause", {"agent": "1002"}))
    await asyncio.wait_for(call, 5)
    [rec] = rig.recorder.calls
    assert rec.result == "answered" and rec.agent == "1002"
    f = engine.inbound.figures()
    assert (f["offered"], f["answered"], f["abandoned"]) == (1, 1, 0)


async def test_caller_hangs_up_while_an_agent_is_reserved(rig: Rig) -> None:
    engine = rig.engine
    await login(engine, "1001", HINDI_CHAN, paused=True)
    caller = FakeCaller(keys=["2", "0"])
    call = asyncio.ensure_future(caller.run(rig.server.port))
    await caller.wait_for("EXEC StartMusicOnHold")
    caller.hang_up_now()
    await asyncio.wait_for(call, 5)
    await until(engine, lambda: engine.inbound.figures()["abandoned"] == 1)
    assert rig.recorder.calls[0].result == "abandoned_in_queue"
    await engine.submit(Command("agent.unpause", {"agent": "1001"}))
    # nobody waits any more: the agent stays READY for outbound work
    await until(engine, lambda: len(rig.ami.originates()) >= 1)
    assert engine.agents["1001"].status is AgentStatus.READY
