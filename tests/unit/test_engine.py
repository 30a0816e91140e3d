"""The engine with fake ports: the whole call, step by step, from the inputs Asterisk sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from dialer.config import AsteriskSettings, EngineSettings, Settings, TrunkSettings
from dialer.domain.agent import AgentStatus
from dialer.domain.results import CallResult
from dialer.engine.commands import Command
from dialer.engine.core import Engine
from dialer.engine.inputs import AmiLink, BridgeResultIn, HandoffIn, LoginIn, WrapupStartIn
from dialer.engine.ports import CampaignConfig
from dialer.protocol.ami import Message

from .engine_fakes import FakeAmi, FakeStore, running

AGENT_CHAN = "PJSIP/seat001-00000001"


def ev(name: str, **headers: str) -> Message:
    return Message.build([("Event", name), *headers.items()])


def settings(abandon: float = 0.4) -> Settings:
    trunk = TrunkSettings(name="carrier", dial_template="Local/{number}@sim", max_cps=100)
    return Settings(
        asterisk=AsteriskSettings(trunks=(trunk,)),
        engine=EngineSettings(abandon_after_seconds=abandon, tick_interval=0.02),
    )


class ShiftClock:
    """Real monotonic time that a test can move forward."""

    def __init__(self) -> None:
        self.shift = 0.0

    def now(self) -> float:
        return time.monotonic() + self.shift

    def real(self, seconds: float) -> float:
        return max(seconds, 0.0)


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Engine, FakeStore, FakeAmi]]:
    store = FakeStore()
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode="progressive", wrapup_seconds=5)
    store.leads = {i: f"+9155510{i:02d}" for i in range(1, 6)}
    ami = FakeAmi()
    engine = Engine(settings(), store, ami, clock=ShiftClock())
    async with running(engine, store):
        yield engine, store, ami


async def until(engine: Engine, pred: Callable[[], bool], limit: float = 5.0) -> None:
    async def loop() -> None:
        while not pred():
            await engine.barrier()
            await asyncio.sleep(0)  # let effect tasks run between barriers

    await asyncio.wait_for(loop(), limit)


async def login(engine: Engine, agent: str = "1001", chan: str = AGENT_CHAN) -> None:
    reply = await engine.ask(lambda f: LoginIn(agent, chan, "seat001", (1,), False, f))
    assert reply.ok, reply


async def test_live_call_bridged_wrapped_and_disposed(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine)
    await until(engine, lambda: len(ami.originates()) >= 1)
    o = ami.originates()[0]
    cid = o["ChannelId"]
    assert o["OtherChannelId"] == f"{cid}-2" and o["var:CALLID"] == cid
    assert o["Context"] == "dialer-out" and o["Channel"].startswith("Local/9155510")
    assert len(ami.originates()) == 1  # progressive: one ready agent, one call
    cust = "Local/9155510@sim-00000001;1"
    for m in (
        ev("Newchannel", Uniqueid=cid, Channel=cust),
        ev("Newstate", Uniqueid=cid, Channel=cust, ChannelStateDesc="Up"),
        ev("VarSet", Uniqueid=cid, Channel=cust, Variable="AMDSTATUS", Value="HUMAN"),
    ):
        engine.on_ami_event(m)
    plan = await engine.ask(lambda f: HandoffIn(cid, cust, "HUMAN", "HUMAN-1", f))
    assert (plan.action, plan.agent, plan.channel) == ("bridge", "1001", AGENT_CHAN)
    assert engine.agents["1001"].status is AgentStatus.RESERVED
    engine.on_ami_event(ev("BridgeEnter", BridgeUniqueid="b1", Channel=AGENT_CHAN, Uniqueid="x"))
    engine.on_ami_event(ev("BridgeEnter", BridgeUniqueid="b1", Channel=cust, Uniqueid=cid))
    await engine.barrier()
    assert engine.agents["1001"].status is AgentStatus.TALKING
    assert engine.stats.handoff_ms and engine.stats.handoff_ms[0] >= 0
    engine.on_ami_event(ev("BridgeLeave", BridgeUniqueid="b1", Channel=AGENT_CHAN))
    await engine.barrier()
    assert engine.agents["1001"].status is AgentStatus.WRAPUP
    wrap = await engine.ask(lambda f: WrapupStartIn("1001", AGENT_CHAN, f))
    assert wrap.ok and "1" in wrap.data["codes"]
    bad = await engine.submit(Command("agent.disposition", {"agent": "1001", "code": "77"}))
    assert (bad.ok, bad.code) == (False, "unknown_disposition")
    good = await engine.submit(Command("agent.disposition", {"agent": "1001", "code": "2"}))
    assert good.ok, good
    plan2 = await engine.ask(lambda f: BridgeResultIn(cid, "1001", "SUCCESS", f))
    assert plan2.action == "hangup"
    hangup = [("Event", "Hangup"), ("Channel", cust), ("Uniqueid", cid), ("Cause", "16")]
    engine.on_ami_event(Message.build([*hangup, ("Cause-txt", "Normal Clearing")]))
    await until(engine, lambda: len(store.ended) == 1)
    row = store.ended[0]
    assert (row.call_id, row.result, row.agent_number) == (cid, CallResult.HUMAN, "1001")
    assert (row.hangup_cause, row.hangup_cause_text, row.hangup_leg) == (
        16,
        "Normal Clearing",
        "self",  # only the ;1 half (our call id) reported; the ;2 half said nothing
    )
    assert [d.code for d in store.dispositions] == ["2"]
    assert store.dispositions[0].callback_at is not None  # "call back" schedules a callback
    states = [r.state for r in store.agent_rows]
    assert states[:5] == ["READY", "RESERVED", "TALKING", "WRAPUP", "READY"]


async def test_number_put_on_dnc_after_reservation_is_not_dialled(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    # Leads 1-4 were dialable when the hopper handed them out; a second later they are DNC.
    store.dnc = {store.leads[i] for i in range(1, 5)}
    await login(engine)
    await until(engine, lambda: len(ami.originates()) >= 1)
    await engine.barrier()
    dialled = [o["var:LEADID"] for o in ami.originates()]
    assert dialled == ["5"]
    for _ in range(20):  # more decisions: the DNC'd leads come back from the hopper, unused
        await engine.barrier()
        await asyncio.sleep(0.01)
    assert [o["var:LEADID"] for o in ami.originates()] == ["5"]
    assert all(row.lead_id == 5 for row in store.started)


async def test_no_agent_in_time_is_abandoned_and_kept_away(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine)
    await until(engine, lambda: len(ami.originates()) >= 1)
    cid = ami.originates()[0]["ChannelId"]
    await engine.submit(Command("agent.pause", {"agent": "1001", "reason": "tea"}))
    engine.on_ami_event(ev("Newstate", Uniqueid=cid, Channel="c;1", ChannelStateDesc="Up"))
    plan = await engine.ask(lambda f: HandoffIn(cid, "c;1", "HUMAN", "", f))
    assert plan.action == "abandon" and plan.prompt == "tt-allbusy"
    engine.on_ami_event(ev("Hangup", Uniqueid=cid, Channel="c;1", Cause="16"))
    await until(engine, lambda: len(store.ended) == 1)
    assert store.ended[0].result is CallResult.ABANDONED
    assert store.ended[0].no_redial_hours == 72.0
    # The wallboard's count: once when it was dropped, not again when its row was closed.
    counters = engine.campaigns[1].counters
    assert (counters["abandoned"], counters["live"], counters["ended"]) == (1, 1, 1)


async def test_vanished_agent_gives_the_next_agent(rig: tuple[Engine, FakeStore, FakeAmi]) -> None:
    engine, _store, ami = rig
    await login(engine, "1001", AGENT_CHAN)
    await login(engine, "1002", "PJSIP/seat002-00000002")
    await until(engine, lambda: len(ami.originates()) >= 2)
    cid = ami.originates()[0]["ChannelId"]
    engine.on_ami_event(ev("Newstate", Uniqueid=cid, Channel="c;1", ChannelStateDesc="Up"))
    plan = await engine.ask(lambda f: HandoffIn(cid, "c;1", "HUMAN", "", f))
    first = plan.agent
    plan2 = await engine.ask(lambda f: BridgeResultIn(cid, first, "NONEXISTENT", f))
    assert plan2.action == "bridge" and plan2.agent != first
    assert engine.agents[first].status is AgentStatus.LOGGED_OUT


async def test_busy_through_local_channel_and_machine(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine)
    await login(engine, "1002", "PJSIP/seat002-00000002")
    await until(engine, lambda: len(ami.originates()) >= 2)
    busy, machine = (o["ChannelId"] for o in ami.originates()[:2])
    engine.on_ami_event(ev("Newchannel", Uniqueid=busy, Channel="b;1"))
    engine.on_ami_event(ev("Hangup", Uniqueid=f"{busy}-2", Channel="b;2", Cause="17"))
    engine.on_ami_event(ev("Hangup", Uniqueid=busy, Channel="b;1", Cause="0"))
    engine.on_ami_event(ev("OriginateResponse", Uniqueid=busy, Response="Failure", Reason="5"))
    engine.on_ami_event(ev("Newstate", Uniqueid=machine, Channel="m;1", ChannelStateDesc="Up"))
    engine.on_ami_event(
        ev("VarSet", Uniqueid=machine, Channel="m;1", Variable="AMDSTATUS", Value="MACHINE")
    )
    plan = await engine.ask(lambda f: HandoffIn(machine, "m;1", "MACHINE", "LONGGREETING", f))
    assert plan.action == "hangup"
    engine.on_ami_event(ev("Hangup", Uniqueid=machine, Channel="m;1", Cause="16"))
    await until(engine, lambda: len(store.ended) == 2)
    results = {r.call_id: r.result for r in store.ended}
    assert results == {busy: CallResult.BUSY, machine: CallResult.MACHINE}
    assert all(a.status is AgentStatus.READY for a in engine.agents.values())


async def test_link_lost_reconciles_calls_and_agent_lines(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine)
    await until(engine, lambda: len(ami.originates()) >= 1)
    cid = ami.originates()[0]["ChannelId"]
    engine.on_ami_event(ev("Newchannel", Uniqueid=cid, Channel="c;1"))
    await engine.barrier()
    engine.clock.shift += 10.0  # type: ignore[attr-defined]  # the outage lasted a while
    engine.post(AmiLink(False))
    ami.channels = []  # Asterisk lost everything: the call and the agent's line are gone
    engine.post(AmiLink(True))
    await until(engine, lambda: len(store.ended) >= 1)
    assert store.ended[0].result is CallResult.LINK_LOST
    await until(engine, lambda: engine.agents["1001"].status is AgentStatus.LOGGED_OUT)


async def test_commands_errors_are_stable(rig: tuple[Engine, FakeStore, FakeAmi]) -> None:
    engine, _, _ = rig
    r = await engine.submit(Command("agent.pause", {"agent": "9999"}))
    assert (r.ok, r.code) == (False, "unknown_agent")
    r = await engine.submit(Command("nope", {}))
    assert r.code == "unknown_command"
    await login(engine)
    r = await engine.submit(Command("agent.unpause", {"agent": "1001"}))
    assert r.code == "illegal_transition"
    r = await engine.submit(Command("campaign.pause", {"campaign": "spring"}))
    assert r.ok and engine.campaigns[1].config.status == "paused"
    r = await engine.submit(Command("campaign.start", {"campaign": "autumn"}))
    assert r.code == "unknown_campaign"
    r = await engine.submit(Command("status", {}))
    assert r.ok and r.data["agents_by_state"] == {"READY": 1}


async def test_reconciliation_spares_a_call_heard_of_just_before_the_listing(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine)
    await until(engine, lambda: len(ami.originates()) >= 1)
    cid = ami.originates()[0]["ChannelId"]
    ami.channels = [{"Uniqueid": "someone-else", "Channel": AGENT_CHAN}]
    engine.post(AmiLink(False))
    engine.post(AmiLink(True))  # the Originate may still be setting its channel up
    await until(engine, lambda: engine.stats.reconciled >= 1)
    assert cid in engine.calls and not store.ended
    assert engine.agents["1001"].logged_in  # its line is in the listing


async def test_stale_calls_share_one_channel_listing_per_interval(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    from dialer.engine.core import RECONCILE_EVERY, RECONCILE_KEY
    from dialer.engine.inputs import TimerIn

    engine, store, ami = rig
    await login(engine)
    await until(engine, lambda: len(ami.originates()) >= 1)
    cid = ami.originates()[0]["ChannelId"]
    ami.channels = [{"Uniqueid": cid, "Channel": "c;1"}, {"Uniqueid": "x", "Channel": AGENT_CHAN}]

    def listings() -> int:
        return sum(1 for name, _ in ami.actions if name == "CoreShowChannels")

    first = listings()
    engine.post(TimerIn("stale", cid))  # a long call: Asterisk is asked once
    await until(engine, lambda: engine.stats.reconciled >= 1)
    assert listings() == first + 1
    engine.post(TimerIn("stale", cid))  # another one just after: put off, not listed again
    await engine.barrier()
    assert listings() == first + 1 and ("stale", RECONCILE_KEY) in engine._timers
    engine.clock.shift += RECONCILE_EVERY  # type: ignore[attr-defined]
    engine.post(TimerIn("stale", RECONCILE_KEY))  # the put-off listing is due
    await until(engine, lambda: engine.stats.reconciled >= 2)
    assert listings() == first + 2
    assert cid in engine.calls and not store.ended  # listed: nothing was settled


def test_hangup_cause_of_a_local_busy_is_read_from_the_other_half() -> None:
    from dialer.domain.call import CallState
    from dialer.engine.core import CallTrack, _hangup_cause

    call = CallTrack(CallState("c1", "1", 7, "+915551234", launched_at=0.0), "t", "Local/2001@x")
    # trace 13L: the ;1 half says 0 Unknown, the ;2 half carries 17 User busy
    call.self_cause, call.self_cause_txt = 0, "Unknown"
    call.other_cause, call.other_cause_txt = 17, "User busy"
    assert _hangup_cause(call) == {
        "hangup_cause": 17,
        "hangup_cause_text": "User busy",
        "hangup_leg": "other",
    }
    pjsip = CallTrack(CallState("c2", "1", 8, "+915551234", launched_at=0.0), "t", "PJSIP/1@c")
    pjsip.self_cause, pjsip.self_cause_txt = 19, "User alerting, no answer"
    assert _hangup_cause(pjsip)["hangup_leg"] == "self"
