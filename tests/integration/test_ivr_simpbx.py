"""End to end on the simulator: inbound callers dial a DID, walk the IVR, reach a nailed-up agent.

The simulator (`dialer.simpbx`) plays Asterisk: the carrier call enters `dialer-inbound`, its
FastAGI session comes to our real server, the caller types the profile's DTMF at every GET DATA;
a simulated agent logs in by dialling the login code and holds in the WaitExten loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from dialer.agi.server import AgiRouter, AgiServer, AgiSession
from dialer.agi_scripts import ivr as ivr_script
from dialer.agi_scripts.inbound_desk import InboundDesk, make_queue
from dialer.agi_scripts.ivr import IvrHandler, MemoryRecorder, load_flows
from dialer.config import AgiSettings, InboundSettings
from dialer.simpbx import SimAgentSpec, SimPbx, load_profile
from dialer.simpbx.model import plan_inbound

OPEN = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
SPEED = 50.0


@dataclass
class Rig:
    pbx: SimPbx
    server: AgiServer
    desk: InboundDesk
    recorder: MemoryRecorder
    logged_in: asyncio.Event


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    agents = getattr(request, "param", ())
    settings = InboundSettings(max_wait_seconds=30.0)
    desk = InboundDesk(make_queue(settings))
    recorder = MemoryRecorder()
    logged_in = asyncio.Event()

    async def login(session: AgiSession) -> None:
        # a stand-in for agent/login (issue 7): accept anyone, put them on the desk
        user = await session.get_data("agent-user", 10000, 6)
        await session.get_data("agent-pass", 10000, 6)
        await session.set_variable("AGENTID", user)
        await session.set_variable("AGENT_STATE", "READY")
        desk.agent_ready(user, session.channel, frozenset({"hi", "en"}))
        logged_in.set()

    async def wrapup(session: AgiSession) -> None:
        await session.set_variable("AGENT_STATE", "READY")

    router = AgiRouter()
    router.add(
        ivr_script.ROUTE,
        IvrHandler(load_flows(None), desk, recorder, settings, wall_clock=lambda: OPEN),
    )
    router.add("agent/login", login)
    router.add("agent/wrapup", wrapup)
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    prof = load_profile()
    prof = dataclasses.replace(
        prof,
        agents=dataclasses.replace(
            prof.agents, login_spread=0.0, break_every=0.0, wrong_pin_share=0.0
        ),
    )
    pbx = SimPbx(agi_port=server.port, speed=SPEED, seed=3, agents=agents, profile=prof)
    await pbx.start()
    yield Rig(pbx, server, desk, recorder, logged_in)
    await pbx.close()
    await server.close()


def caller_plan(pbx: SimPbx, dtmf: str, **changes: float) -> object:
    plan = plan_inbound(pbx.profile, random.Random(5))
    return dataclasses.replace(plan, dtmf=dtmf, party_hangs_up=True, **changes)


async def wait_record(rig: Rig, n: int = 1) -> None:
    async with asyncio.timeout(20):
        while len(rig.recorder.calls) < n:
            rig.recorder.ended.clear()
            await rig.recorder.ended.wait()


async def test_simulated_caller_walks_menus_invalid_input_and_the_survey(rig: Rig) -> None:
    # "2" at every prompt: English, menu 2 (booth number: "2" is too short three times, so the
    # collect node's on_failure), then the two survey questions answered "2".
    plan = caller_plan(rig.pbx, "2", patience=3600.0)
    rig.pbx.inbound_call("5551000", "9812345678", plan)  # type: ignore[arg-type]
    await wait_record(rig)
    [rec] = rig.recorder.calls
    assert rec.did == "5551000" and rec.caller == "9812345678" and rec.language == "en"
    assert rec.path == (
        "language",
        "welcome",
        "menu",
        "booth",
        "survey-attended",
        "survey-active",
        "survey-thanks",
        "goodbye",
    )
    assert rec.answers == {"attended_meeting": "no", "active_volunteers": "2"}
    assert rec.result == "completed"


@pytest.mark.parametrize("rig", [(SimAgentSpec("1001", "4321", "seat001"),)], indirect=True)
async def test_simulated_caller_reaches_a_simulated_agent(rig: Rig) -> None:
    await asyncio.wait_for(rig.logged_in.wait(), 20)
    # "0": not a language (twice, then the DID's English), then 0 = speak to someone
    plan = caller_plan(rig.pbx, "0", patience=3600.0, talk=20.0)
    rig.pbx.inbound_call("5551000", "9812345678", plan)  # type: ignore[arg-type]
    await wait_record(rig)
    [rec] = rig.recorder.calls
    assert rec.path == ("language", "welcome", "menu", "queue")
    assert rec.result == "answered" and rec.agent == "1001"
    f = rig.desk.figures()
    assert (f.offered, f.answered, f.abandoned) == (1, 1, 0)
    assert rig.pbx.stats()["bridged"] == 1


async def test_simulated_caller_gives_up_in_the_queue(rig: Rig) -> None:
    # an agent is logged in but busy: the caller's patience runs out while waiting
    rig.desk.agent_ready("9", "PJSIP/seat009-00000099", frozenset({"hi", "en"}))
    rig.desk.agent_busy("9")
    plan = caller_plan(rig.pbx, "0", patience=40.0)
    rig.pbx.inbound_call("5551000", "9812345678", plan)  # type: ignore[arg-type]
    await wait_record(rig)
    [rec] = rig.recorder.calls
    assert rec.result == "abandoned_in_queue" and rec.last_node == "queue"
    assert rig.desk.figures().abandoned == 1
