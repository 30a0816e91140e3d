"""Agents' work assignment in the engine (issue 9): queue.assign, inbound dispatch order, what
each campaign's pacer sees, and what a login does with the assignment kept in the record."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from dialer.config import AsteriskSettings, EngineSettings, InboundSettings, Settings, TrunkSettings
from dialer.domain.agent import AgentStatus
from dialer.domain.inbound_queue import QueuedCaller
from dialer.engine.commands import Command, Reply
from dialer.engine.core import Engine
from dialer.engine.inbound import EngineDesk, EngineTicket
from dialer.engine.inputs import LoginIn
from dialer.engine.ports import CampaignConfig
from dialer.live.state import MemoryLive

from .engine_fakes import FakeAmi, FakeStore, running
from .test_engine import ShiftClock, until

OVERFLOW = 20.0
HOLD = 30.0


@dataclass
class Rig:
    engine: Engine
    store: FakeStore
    ami: FakeAmi
    clock: ShiftClock
    live: MemoryLive
    desk: EngineDesk


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    trunk = TrunkSettings(name="carrier", dial_template="Local/{number}@sim", max_cps=100)
    s = Settings(
        asterisk=AsteriskSettings(trunks=(trunk,)),
        engine=EngineSettings(abandon_after_seconds=0.4, tick_interval=0.02),
        inbound=InboundSettings(
            overflow_after_seconds=OVERFLOW, hold_outbound_after_seconds=HOLD, max_wait_seconds=600
        ),
    )
    store = FakeStore()
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode="progressive", status="running")
    store.campaigns_[2] = CampaignConfig(2, "summer", dial_mode="progressive", status="running")
    clock, live = ShiftClock(), MemoryLive()
    engine = Engine(s, store, FakeAmi(), clock=clock, live=live)
    async with running(engine, store):
        yield Rig(engine, store, engine.ami, clock, live, EngineDesk(engine))  # type: ignore[arg-type]


_chans = itertools.count(1)


async def login(engine: Engine, agent: str, campaigns: tuple[int, ...] = (1,)) -> None:
    chan = f"PJSIP/seat{agent}-{next(_chans):08d}"
    reply = await engine.ask(lambda f: LoginIn(agent, chan, f"seat{agent}", campaigns, False, f))
    assert reply.ok, reply


async def assign(engine: Engine, agent: str, **args: str) -> Reply:
    return await engine.submit(Command("queue.assign", {"agent": agent, **args}, actor="sup"))


_callers = itertools.count(1)


async def caller(rig: Rig) -> EngineTicket:
    ticket = rig.desk.join(QueuedCaller(f"in-{next(_callers)}", rig.engine.clock.now()))
    await rig.engine.barrier()
    return ticket


def offered(ticket: EngineTicket) -> str | None:
    return ticket.offer.agent_id if ticket.offer is not None else None


async def test_assign_refuses_clearly(rig: Rig) -> None:
    e = rig.engine
    rig.store.known_agents = {"1001", "1002"}
    await login(e, "1001")
    await e.submit(Command("agent.logout", {"agent": "1001"}))
    await login(e, "1002")
    cases = [
        ("9999", {"campaign": "spring"}, "unknown_agent", "no agent 9999"),
        ("1001", {"campaign": "autumn"}, "unknown_campaign", "no campaign autumn"),
        ("1001", {"work": "inbound_only", "priority": "outbound"}, "bad_arguments", "blended"),
        ("1002", {"campaign": "autumn"}, "unknown_campaign", "no campaign autumn"),
        ("1002", {"work": "inbound_only", "priority": "outbound"}, "bad_arguments", "blended"),
        ("1002", {"work": "inbound_only", "campaign": "spring"}, "bad_arguments", "campaign"),
        ("1002", {"work": "sometimes"}, "bad_arguments", "use one of"),
        ("1002", {}, "bad_arguments", "give a campaign"),
    ]
    for agent, args, code, says in cases:
        reply = await assign(e, agent, **args)
        assert (reply.ok, reply.code) == (False, code), (args, reply)
        assert says in reply.message
    assert rig.store.work == {}  # nothing refused was kept
    assert e.inbound.mode("1002").value == "inbound_first"


async def test_assign_moves_sets_priority_saves_and_publishes(rig: Rig) -> None:
    e = rig.engine
    await login(e, "1001")
    reply = await assign(e, "1001", campaign="summer", priority="outbound")
    assert reply.ok, reply
    assert reply.message == "agent 1001: campaign summer, blended, outbound first (saved)"
    assert dict(reply.data) == {
        "agent": "1001",
        "campaign": 2,
        "campaign_name": "summer",
        "work": "outbound_first",
        "work_label": "blended, outbound first",
        "saved": True,
    }
    assert e.agents["1001"].campaign == "2"
    assert rig.store.work == {"1001": ("outbound_first", 2)}
    snap = await rig.live.snapshot()
    assert (
        snap.agents["1001"]["work"] == "outbound_first" and snap.agents["1001"]["campaign"] == "2"
    )
    # The older positional form (``target``) still moves an agent; the work stays.
    reply = await assign(e, "1001", target="1")
    assert reply.ok and e.agents["1001"].campaign == "1" and reply.data["work"] == "outbound_first"
    # Inbound only: no campaign while so; blended again goes back to the campaign.
    reply = await assign(e, "1001", work="inbound_only")
    assert reply.ok and e.agents["1001"].campaign == "" and reply.data["campaign"] is None
    assert rig.store.work["1001"] == ("inbound_only", 1)
    reply = await assign(e, "1001", work="blended")
    assert reply.ok and e.agents["1001"].campaign == "1" and reply.data["work"] == "inbound_first"


async def test_work_set_ahead_of_login_is_kept_and_used_at_login(rig: Rig) -> None:
    e = rig.engine
    rig.store.known_agents = {"1001", "1002"}
    await login(e, "1002")
    await e.submit(Command("agent.logout", {"agent": "1002"}))
    for agent in ("1001", "1002"):  # never logged in; logged out
        reply = await assign(e, agent, campaign="summer", priority="outbound")
        assert reply.ok, reply
        assert "not logged in" in reply.message and "next login" in reply.message
        assert (reply.data["logged_in"], reply.data["saved"]) == (False, True)
        assert rig.store.work[agent] == ("outbound_first", 2)
    reply = await assign(e, "1001", work="inbound_only")
    assert reply.ok and rig.store.work["1001"] == ("inbound_only", None)
    await login(e, "1001", campaigns=(1, 2))
    await login(e, "1002", campaigns=(1, 2))
    assert e.agents["1001"].campaign == ""  # inbound only: no campaign
    assert e.agents["1002"].campaign == "2"  # put on summer ahead of the login
    assert e.inbound.mode("1002").value == "outbound_first"


async def test_a_failed_save_is_the_reply(rig: Rig) -> None:
    e = rig.engine
    await login(e, "1001")
    rig.store.work_fails = True
    reply = await assign(e, "1001", work="outbound_only")
    assert (reply.ok, reply.code, reply.data["saved"]) == (False, "failed", False)
    assert "not saved" in reply.message and "record unreachable" in reply.message
    assert e.inbound.mode("1001").value == "outbound_only"  # in force for this session


async def test_inbound_first_agents_first_outbound_first_only_as_overflow(rig: Rig) -> None:
    e = rig.engine
    await login(e, "1001")  # idle the longest
    assert (await assign(e, "1001", priority="outbound")).ok
    await login(e, "1002")
    first = await caller(rig)
    assert offered(first) == "1002"  # though 1001 has been idle longer
    second = await caller(rig)
    assert offered(second) is None  # 1001 takes inbound callers only as overflow
    assert e.agents["1001"].status is AgentStatus.READY
    rig.clock.shift += OVERFLOW - 1
    await until(e, lambda: e.clock.now() - second.caller.enqueued_at >= OVERFLOW - 1)
    await e.barrier()
    assert offered(second) is None
    rig.clock.shift += 1.5
    await until(e, lambda: offered(second) is not None)  # the tick's dispatch
    assert offered(second) == "1001" and e.agents["1001"].status is AgentStatus.RESERVED


async def test_inbound_only_and_outbound_only(rig: Rig) -> None:
    e = rig.engine
    await login(e, "1004")  # idle the longest
    assert (await assign(e, "1004", work="outbound_only")).ok
    await login(e, "1003")
    assert (await assign(e, "1003", work="inbound_only")).ok
    ticket = await caller(rig)
    assert offered(ticket) == "1003"
    rig.clock.shift += 10 * OVERFLOW
    late = await caller(rig)
    rig.clock.shift += 10 * OVERFLOW
    ticks = e.stats.applied
    await until(e, lambda: e.stats.applied >= ticks + 20)
    assert offered(late) is None and e.agents["1004"].status is AgentStatus.READY
    # With only the outbound-only agent left, the IVR hears nobody can take a caller.
    assert e.inbound.can_serve(None)
    await e.submit(Command("agent.logout", {"agent": "1003"}))
    assert not e.inbound.can_serve(None)


async def test_each_campaigns_pacer_sees_only_agents_who_would_take_callers(rig: Rig) -> None:
    e = rig.engine
    await login(e, "1001")  # inbound first, campaign spring: takes the first caller
    await login(e, "1003")
    assert (await assign(e, "1003", work="inbound_only")).ok  # takes the second
    a, c = await caller(rig), await caller(rig)
    assert {offered(a), offered(c)} == {"1001", "1003"}
    await login(e, "1002")
    assert (await assign(e, "1002", priority="outbound")).ok
    await login(e, "1004")
    assert (await assign(e, "1004", work="outbound_only")).ok
    await login(e, "2001", (2,))
    assert (await assign(e, "2001", work="outbound_only")).ok
    waiting = [await caller(rig), await caller(rig)]
    assert [offered(t) for t in waiting] == [None, None]
    now = e.clock.now()
    spring, summer = e.snapshot(1, now), e.snapshot(2, now)
    # Ready for spring: 1002 (outbound first) and 1004 (outbound only); 1001 is on the caller;
    # 1003 (inbound only) is in no campaign's snapshot at all.
    assert (spring.ready_agents, len(spring.talking)) == (2, 1)
    assert (summer.ready_agents, len(summer.talking)) == (1, 0)
    # Two callers wait: of spring's agents only 1001 takes them before the overflow time,
    # so one of them counts as waiting for spring; summer's outbound-only agent takes none.
    assert len(e.inbound.pacing_view(spring, "1").waiting) == len(spring.waiting) + 1
    assert e.inbound.pacing_view(summer, "2") is summer
    assert len(e.inbound.pacing_view(spring).waiting) == len(spring.waiting) + 2  # no campaign
    # Past the hold time: spring's launches are held (its agents take callers), summer's not.
    rig.clock.shift += HOLD + 1
    later = e.clock.now()
    assert e.inbound.hold_outbound(later, "1") and not e.inbound.hold_outbound(later, "2")
    await until(e, lambda: offered(waiting[0]) == "1002")  # overflow to the outbound-first agent


async def test_login_honours_the_kept_assignment(rig: Rig) -> None:
    e = rig.engine
    rig.store.work = {"1005": ("inbound_only", None), "1006": ("outbound_first", 2)}
    e.inbound.load_work(await rig.store.agent_work())  # as `dialer run` does at start
    await login(e, "1005", (1,))
    await login(e, "1006", (1,))
    assert e.agents["1005"].campaign == "" and e.inbound.mode("1005").value == "inbound_only"
    assert e.agents["1006"].campaign == "2"  # the campaign a supervisor put them on, first
    assert (
        e.snapshot(1, e.clock.now()).ready_agents,
        e.snapshot(2, e.clock.now()).ready_agents,
    ) == (
        0,
        1,
    )
    # A re-login in the same run keeps what the supervisor set.
    assert (await assign(e, "1006", work="outbound_only", campaign="spring")).ok
    await e.submit(Command("agent.logout", {"agent": "1006"}))
    await login(e, "1006", (2,))
    assert e.agents["1006"].campaign == "1" and e.inbound.mode("1006").value == "outbound_only"


async def test_inbound_only_agent_gets_no_outbound_call(rig: Rig) -> None:
    e = rig.engine
    rig.store.leads = {i: f"+9155510{i:02d}" for i in range(1, 4)}
    rig.store.work = {"1007": ("inbound_only", None)}
    e.inbound.load_work(await rig.store.agent_work())
    await login(e, "1007")
    ticks = e.stats.applied
    await until(e, lambda: e.stats.applied >= ticks + 30)
    assert rig.ami.originates() == []  # progressive: no ready agent for any campaign
    assert (await assign(e, "1007", work="blended", campaign="spring")).ok
    await until(e, lambda: len(rig.ami.originates()) == 1)
