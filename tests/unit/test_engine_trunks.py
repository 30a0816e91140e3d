"""The engine with fake ports: inbound calls hold channels of the trunk outbound calls use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from dialer.config import AsteriskSettings, EngineSettings, Settings, TrunkSettings
from dialer.engine.core import Engine
from dialer.engine.inputs import AmiLink
from dialer.engine.ports import CampaignConfig

from .engine_fakes import FakeAmi, FakeStore
from .engine_fakes import running as engine_running
from .test_engine import ShiftClock, ev, login, until

Rig = tuple[Engine, FakeStore, FakeAmi]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running(FakeAmi()) as r:
        yield r


@contextlib.asynccontextmanager
async def running(ami: FakeAmi) -> AsyncIterator[Rig]:
    store = FakeStore()
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode="progressive", wrapup_seconds=5)
    store.leads = {i: f"+9155510{i:02d}" for i in range(1, 9)}
    trunk = TrunkSettings(
        name="carrier", dial_template="PJSIP/{number}@carrier", max_channels=3, max_cps=100
    )
    settings = Settings(
        asterisk=AsteriskSettings(trunks=(trunk,)),
        engine=EngineSettings(abandon_after_seconds=0.4, tick_interval=0.02),
    )
    engine = Engine(settings, store, ami, clock=ShiftClock())
    async with engine_running(engine, store):
        yield engine, store, ami


def inbound(uid: str, seq: int) -> dict[str, str]:
    """A Newchannel / CoreShowChannel for a caller on the carrier trunk (trace 26)."""
    return {
        "Channel": f"PJSIP/carrier-{seq:08x}",
        "ChannelState": "4",
        "Context": "dialer-inbound",
        "Exten": "5551000",
        "Uniqueid": uid,
    }


async def ticks(engine: Engine, n: int = 10) -> None:
    """Let the engine run ``n`` more pacing ticks (each an input it applies)."""
    target = engine.stats.applied + n
    await until(engine, lambda: engine.stats.applied >= target)


async def test_outbound_launches_limited_while_inbound_calls_hold_channels(rig: Rig) -> None:
    engine, _, ami = rig
    gate = engine.trunks["carrier"]
    for n, uid in enumerate(("in-1", "in-2"), 1):
        engine.on_ami_event(ev("Newchannel", **inbound(uid, n)))
    await engine.barrier()
    assert (gate.in_use, gate.inbound) == (2, 2)
    for n in range(3):  # three READY agents: progressive wants three calls
        await login(engine, f"100{n + 1}", f"PJSIP/seat00{n + 1}-0000000{n + 1}")
    await until(engine, lambda: len(ami.originates()) >= 1)
    await ticks(engine, 20)
    assert len(ami.originates()) == 1  # 3 channels: 2 inbound + 1 outbound
    assert gate.in_use == 3
    # Our own Originate through the trunk appears in the same context (trace 12): not inbound.
    cid = ami.originates()[0]["ChannelId"]
    ours = {**inbound(cid, 9), "ChannelState": "0", "Exten": "s"}
    engine.on_ami_event(ev("Newchannel", **ours))
    await engine.barrier()
    assert gate.inbound == 2
    # A caller hangs up: its channel is free for the next launch, and freed only once.
    hangup = ev("Hangup", Uniqueid="in-1", Channel="PJSIP/carrier-00000001", Cause="16")
    engine.on_ami_event(hangup)
    engine.on_ami_event(hangup)
    await until(engine, lambda: len(ami.originates()) >= 2)
    await ticks(engine, 20)
    assert len(ami.originates()) == 2 and (gate.in_use, gate.inbound) == (3, 1)


async def test_link_lost_releases_inbound_calls_that_ended_unseen(rig: Rig) -> None:
    engine, _, ami = rig
    gate = engine.trunks["carrier"]
    engine.on_ami_event(ev("Newchannel", **inbound("in-1", 1)))
    engine.on_ami_event(ev("Newchannel", **inbound("in-2", 2)))
    engine.on_ami_event(ev("Newchannel", **inbound("in-3", 3)))
    await engine.barrier()
    await login(engine, "1001", "PJSIP/seat001-00000001")
    await ticks(engine, 20)
    assert not ami.originates() and gate.in_use == 3  # the trunk is full of callers
    # The link drops; meanwhile in-1 and in-2 hang up and in-4 arrives.  The listing after
    # the reconnect settles both: two channels released, one adopted.
    engine.post(AmiLink(False))
    ami.channels = [
        inbound("in-3", 3),
        inbound("in-4", 4),
        {"Uniqueid": "x", "Channel": "PJSIP/seat001-00000001", "Context": "dialer-agent-loop"},
    ]
    engine.post(AmiLink(True))
    await until(engine, lambda: engine.stats.reconciled >= 1)
    assert set(engine.trunk_inbound.held) == {"in-3", "in-4"}
    await until(engine, lambda: len(ami.originates()) >= 1)
    await ticks(engine, 20)
    assert len(ami.originates()) == 1 and gate.in_use == 3
    # A late Hangup of a call the listing already settled changes nothing.
    engine.on_ami_event(ev("Hangup", Uniqueid="in-1", Channel="PJSIP/carrier-00000001"))
    await engine.barrier()
    assert gate.in_use == 3


async def test_callers_already_up_at_the_first_link_are_counted() -> None:
    ami = FakeAmi(channels=[inbound("in-1", 1), inbound("in-2", 2), inbound("in-3", 3)])
    async with running(ami) as (engine, _, _):
        gate = engine.trunks["carrier"]
        await until(engine, lambda: gate.in_use == 3)
        assert engine.stats.reconciled == 0  # a listing for the trunks only, not a reconcile
        await login(engine, "1001", "PJSIP/seat001-00000001")
        await ticks(engine, 20)
        assert not ami.originates()
        engine.on_ami_event(ev("Hangup", Uniqueid="in-2", Channel="PJSIP/carrier-00000002"))
        await until(engine, lambda: len(ami.originates()) == 1)
