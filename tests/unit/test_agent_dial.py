"""Preview/manual dialling in the engine with fake ports: the reservation, step by step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dialer.domain.agent import AgentStatus
from dialer.domain.results import CallResult
from dialer.engine.commands import Command, Reply
from dialer.engine.core import Engine
from dialer.engine.inputs import HandoffIn
from dialer.engine.ports import CampaignConfig

from .engine_fakes import FakeAmi, FakeStore, running
from .test_engine import ShiftClock, ev, login, settings, until

S = AgentStatus
CHAN_1 = "PJSIP/seat001-00000001"
CHAN_2 = "PJSIP/seat002-00000002"


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Engine, FakeStore, FakeAmi]]:
    store = FakeStore()
    store.campaigns_[1] = CampaignConfig(1, "look", dial_mode="preview", wrapup_seconds=5)
    store.leads = {i: f"+9155510{i:02d}" for i in range(1, 3)}
    ami = FakeAmi()
    engine = Engine(settings(), store, ami, clock=ShiftClock())
    async with running(engine, store):
        yield engine, store, ami


async def cmd(engine: Engine, name: str, agent: str) -> Reply:
    return await engine.submit(Command(name, {"agent": agent}, actor="phone"))


async def dial_for_1001(engine: Engine, ami: FakeAmi) -> str:
    """Agent 1001 logs in on CHAN_1, takes the next lead and dials it: the call id."""
    await login(engine, "1001", CHAN_1)
    assert (await cmd(engine, "agent.next", "1001")).ok
    assert (await cmd(engine, "agent.dial", "1001")).ok
    await until(engine, lambda: len(ami.originates()) == 1)
    return ami.originates()[0]["ChannelId"]


async def test_next_reserves_this_agent_and_the_answer_goes_to_them(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine, "1002", CHAN_2)  # longest idle: the pacer would pick 1002 first
    await login(engine, "1001", CHAN_1)
    for _ in range(10):  # ticks pass: a preview campaign has no pacer, nothing is dialled
        await engine.barrier()
        await asyncio.sleep(0.01)
    assert ami.originates() == []
    taken = await cmd(engine, "agent.next", "1001")
    assert taken.ok and taken.data["mode"] == "preview" and taken.data["phone"] == store.leads[1]
    assert engine.agents["1001"].status is S.RESERVED and not engine.agents["1001"].call_id
    assert engine.agents["1002"].status is S.READY
    dialled = await cmd(engine, "agent.dial", "1001")
    assert dialled.ok, dialled
    await until(engine, lambda: len(ami.originates()) == 1)
    o = ami.originates()[0]
    cid = o["ChannelId"]
    assert (o["var:LEADID"], dialled.data["call"]) == ("1", cid)
    assert engine.agents["1001"].call_id == cid
    engine.on_ami_event(ev("Newstate", Uniqueid=cid, Channel="c;1", ChannelStateDesc="Up"))
    plan = await engine.ask(lambda f: HandoffIn(cid, "c;1", "HUMAN", "", f))
    assert (plan.action, plan.agent, plan.channel) == ("bridge", "1001", CHAN_1)
    assert engine.agents["1002"].status is S.READY  # never offered
    engine.on_ami_event(ev("BridgeEnter", BridgeUniqueid="b1", Channel=CHAN_1, Uniqueid="x"))
    engine.on_ami_event(ev("BridgeEnter", BridgeUniqueid="b1", Channel="c;1", Uniqueid=cid))
    await engine.barrier()
    assert engine.agents["1001"].status is S.TALKING


async def test_unanswered_releases_the_agent_and_the_row_names_them(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    cid = await dial_for_1001(engine, ami)
    engine.on_ami_event(
        ev("OriginateResponse", Uniqueid="<unknown>", ActionID=cid, Response="Failure", Reason="1")
    )
    await until(engine, lambda: len(store.ended) == 1)
    assert engine.agents["1001"].status is S.READY
    assert store.ended[0].agent_number == "1001"
    assert store.ended[0].result is not CallResult.HUMAN


async def test_dnc_at_dial_time_and_an_empty_hopper_give_no_lead(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    await login(engine, "1001", CHAN_1)
    store.dnc = {store.leads[1]}
    assert (await cmd(engine, "agent.next", "1001")).ok
    refused = await cmd(engine, "agent.dial", "1001")
    assert (refused.ok, refused.code) == (False, "no_lead")
    assert engine.agents["1001"].status is S.READY and ami.originates() == []
    await until(engine, lambda: 1 not in store.reserved)  # given back
    del store.leads[1]
    # Lead 2 is taken, then the agent hangs up before dialling: the lead goes back too.
    assert (await cmd(engine, "agent.next", "1001")).ok
    engine.on_ami_event(ev("Hangup", Uniqueid="x1", Channel=CHAN_1, Cause="16"))
    await until(engine, lambda: 2 not in store.reserved)
    assert engine.agents["1001"].status is S.LOGGED_OUT
    await login(engine, "1001", CHAN_1)
    del store.leads[2]
    empty = await cmd(engine, "agent.next", "1001")
    assert (empty.ok, empty.code, empty.data["state"]) == (False, "no_lead", "READY")
    assert engine.agents["1001"].status is S.READY
    wrong = await cmd(engine, "agent.dial", "1001")
    assert (wrong.ok, wrong.code) == (False, "illegal_transition")
    states = [r.state for r in store.agent_rows]
    first = ["READY", "RESERVED", "READY", "RESERVED", "LOGGED_OUT"]  # DNC, then hang-up
    assert states == [*first, "READY", "RESERVED", "READY"]  # no lead


def notices(ami: FakeAmi) -> list[tuple[str, dict[str, str]]]:
    """The Setvar and Redirect actions sent to agents' channels, in order."""
    return [(name, dict(h)) for name, h in ami.actions if name in ("Setvar", "Redirect")]


@pytest.mark.parametrize(
    ("reason", "prompt"),
    [
        ("5", "the-party-you-are-calling&is-curntly-busy"),  # busy [13]
        ("3", "the-party-you-are-calling&is-curntly-unavail"),  # no answer [14]
        ("8", "all-circuits-busy-now"),  # congestion [15]
    ],
)
async def test_unanswered_call_is_explained_to_the_holding_agent(
    rig: tuple[Engine, FakeStore, FakeAmi], reason: str, prompt: str
) -> None:
    engine, _, ami = rig
    cid = await dial_for_1001(engine, ami)
    failed = {"Uniqueid": "<unknown>", "ActionID": cid, "Response": "Failure", "Reason": reason}
    engine.on_ami_event(ev("OriginateResponse", **failed))
    await until(engine, lambda: any(name == "Redirect" for name, _ in notices(ami)))
    assert engine.agents["1001"].status is S.READY
    sent = notices(ami)
    assert sent == [
        ("Setvar", {"Channel": CHAN_1, "Variable": "AGENT_STATE", "Value": "READY"}),
        ("Setvar", {"Channel": CHAN_1, "Variable": "DIALER_NOTICE", "Value": prompt}),
        (
            "Redirect",
            {"Channel": CHAN_1, "Context": "dialer-agent-notice", "Exten": "s", "Priority": "1"},
        ),
    ]
    assert not engine.agent_dial.dialled  # each call is explained at most once


async def test_no_notice_when_the_agent_is_gone_or_the_call_is_not_theirs(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    engine, store, ami = rig
    cid = await dial_for_1001(engine, ami)
    engine.on_ami_event(ev("Hangup", Channel=CHAN_1, Uniqueid="agent-line", Cause="16"))
    await until(engine, lambda: not engine.agents["1001"].logged_in)
    engine.on_ami_event(
        ev("OriginateResponse", Uniqueid="<unknown>", ActionID=cid, Response="Failure", Reason="5")
    )
    await until(engine, lambda: len(store.ended) == 1)
    await engine.barrier()
    assert notices(ami) == []  # the agent's line is gone: nobody to tell
    assert not engine.agent_dial.dialled


async def test_no_redirect_when_the_agent_is_taken_while_the_notice_is_on_its_way(
    rig: tuple[Engine, FakeStore, FakeAmi],
) -> None:
    # The Setvars take a round trip each; if the agent is taken meanwhile (here: paused; a
    # caller reserving them is the same), a Redirect would pull their line from under them.
    engine, _, ami = rig
    gate = asyncio.Event()
    plain_send = ami.send

    async def slow_send(action: str, headers: list[tuple[str, str]]) -> object:
        if action == "Setvar":
            await gate.wait()
        return await plain_send(action, headers)

    ami.send = slow_send  # type: ignore[method-assign,assignment]
    cid = await dial_for_1001(engine, ami)
    engine.on_ami_event(
        ev("OriginateResponse", Uniqueid="<unknown>", ActionID=cid, Response="Failure", Reason="5")
    )
    await until(engine, lambda: not engine.agent_dial.dialled)  # the notice is under way
    paused = await engine.submit(Command("agent.pause", {"agent": "1001", "reason": "tea"}))
    assert paused.ok, paused
    gate.set()
    await until(engine, lambda: len(notices(ami)) == 2)  # both Setvars went
    for _ in range(5):
        await asyncio.sleep(0)
        await engine.barrier()
    assert [name for name, _ in notices(ami)] == ["Setvar", "Setvar"]  # no Redirect
