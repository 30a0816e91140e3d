"""AMI actions on live simulated calls: Redirect, Bridge, MixMonitor, Hangup, Originate to seats."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from dialer.protocol.ami import encode_action
from dialer.simpbx import SimAgentSpec, SimPbx, load_profile
from dialer.simpbx.profile import Dist
from tests.integration.simpbx_kit import AgiCall, AmiClient, ScriptedAgi

SECRET = "actions-secret"


class Env:
    """A simulator with one logged-in agent (seat001, 3001) and a scripted controller."""

    def __init__(self) -> None:
        self.agi = ScriptedAgi(
            {
                "agent/login": self.login,
                "agent/wrapup": self.wrapup,
                "outbound/answered": self.answered,
            }
        )
        self.agent_channel = ""
        self.pbx: SimPbx | None = None
        self.ami = AmiClient()
        self.wrapups = 0
        self.hangup_seen: list[bool] = []

    async def login(self, call: AgiCall) -> None:
        await call.cmd("GET DATA agent-user 10000 6")
        await call.cmd("GET DATA agent-pass 10000 6")
        await call.cmd("SET VARIABLE AGENTID 3001")
        await call.cmd("SET VARIABLE AGENT_STATE READY")
        self.agent_channel = call.env["agi_channel"]

    async def wrapup(self, call: AgiCall) -> None:
        self.wrapups += 1

    async def answered(self, call: AgiCall) -> None:
        await call.wait_hangup_line()  # AMI hangs the customer up; FastAGI hears about it
        self.hangup_seen.append(call.got_hangup)
        reply = await call.cmd('STREAM FILE beep ""')
        self.hangup_seen.append(reply.startswith("511"))

    async def start(self) -> None:
        await self.agi.start()
        prof = load_profile()
        prof = dataclasses.replace(
            prof,
            agents=dataclasses.replace(
                prof.agents, login_spread=0.0, break_every=0.0, wrong_pin_share=0.0
            ),
            called=dataclasses.replace(prof.called, patience=Dist(600.0), talk=Dist(600.0)),
        )
        self.pbx = SimPbx(
            agi_port=self.agi.port,
            secret=SECRET,
            speed=50.0,
            profile=prof,
            agents=(SimAgentSpec("3001", "7777", "seat001"),),
        )
        await self.pbx.start()
        await self.ami.connect(self.pbx.ami_port)
        await self.ami.login(SECRET)
        await self.ami.event("Newexten", Context="dialer-agent-loop", Application="WaitExten")

    async def close(self) -> None:
        await self.ami.close()
        if self.pbx is not None:
            await self.pbx.close()
        await self.agi.stop()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    await e.start()
    yield e
    await e.close()


async def test_redirect_moves_the_agent_to_wrapup(env: Env) -> None:
    r = await env.ami.action(
        "Redirect", Channel=env.agent_channel, Context="dialer-agent-wrapup", Exten="s", Priority=1
    )
    assert (r["Response"], r["Message"]) == ("Success", "Redirect successful")
    ev = await env.ami.event("UserEvent", UserEvent="AgentWrapup")
    assert ev["Agent"] == "3001"
    await env.agi.wait_calls("agent/wrapup", done=True)
    await env.ami.wait_for(
        lambda m: (
            m.is_event("Newexten")
            and m.get("Application") == "WaitExten"
            and m.get("Uniqueid") == ev["Uniqueid"]
        ),
        start=len(env.ami.frames) - 1,
    )
    assert env.wrapups == 1


async def test_bridge_action_and_mixmonitor_then_hangup(env: Env) -> None:
    """[19] Bridge action; [23] MixMonitor replies; the agent returns to WaitExten afterwards."""
    env.ami.send(
        "Originate",
        Channel="PJSIP/1001@carrier",
        Application="Wait",
        Data="600",
        Async="true",
        ChannelId="cust-b",
    )
    orr = await env.ami.event("OriginateResponse", Uniqueid="cust-b")
    r = await env.ami.action(
        "Bridge", Channel1=orr["Channel"], Channel2=env.agent_channel, Tone="no"
    )
    assert r["Message"] == "Channels have been bridged"
    enters = [await env.ami.event("BridgeEnter", Uniqueid="cust-b")]
    assert enters[0]["BridgeUniqueid"]
    mm = await env.ami.action("MixMonitor", Channel=env.agent_channel, File="x.wav", Options="b")
    assert mm["Response"] == "Success" and "Message" not in mm
    await env.ami.event("MixMonitorStart")
    stop = await env.ami.action("StopMixMonitor", Channel=env.agent_channel)
    assert stop["Response"] == "Success"
    await env.ami.event("MixMonitorStop")
    again = await env.ami.action("StopMixMonitor", Channel=env.agent_channel)
    assert (again["Response"], again["Message"]) == ("Error", "Could not stop monitoring channel")
    status = await env.ami.action("Status", Channel=env.agent_channel)
    assert status["EventList"] == "start"
    st = await env.ami.event("Status", ActionID=status.action_id or "")
    assert st["BridgeID"] == enters[0]["BridgeUniqueid"]
    hung = await env.ami.action("Hangup", Channel=orr["Channel"])
    assert hung["Message"] == "Channel Hungup"
    await env.ami.event("BridgeDestroy")
    hang = await env.ami.event("Hangup", Uniqueid="cust-b")
    assert hang["Cause"] == "16"
    await env.ami.wait_for(
        lambda m: m.is_event("Newexten") and m.get("Application") == "WaitExten",
        start=env.ami.frames.index(hung),
    )
    mm_bad = await env.ami.action("MixMonitor", Channel="PJSIP/nobody-00000001")
    assert mm_bad["Message"] == "No such channel"
    b_bad = await env.ami.action("Bridge", Channel1="PJSIP/nobody", Channel2=env.agent_channel)
    assert b_bad["Message"] == "Channel1 does not exist: PJSIP/nobody"


async def test_ami_hangup_of_a_customer_in_fastagi(env: Env) -> None:
    """[18, 26] the AGI hears HANGUP, dead-channel commands get 511, the socket is ours to close."""
    env.ami.send(
        "Originate",
        Channel="PJSIP/1002@carrier",
        Context="dialer-out",
        Exten="s",
        Priority=1,
        Async="true",
        ChannelId="cust-h",
        Variable=["CALLID=cust-h", "DIALER_AMD=0"],
    )
    (call,) = await env.agi.wait_calls("outbound/answered")
    r = await env.ami.action("Hangup", Channel=call.env["agi_channel"], Cause=17)
    assert r["Message"] == "Channel Hungup"
    soft = await env.ami.event("SoftHangupRequest", Uniqueid="cust-h")
    assert soft["Cause"] == "17"
    hang = await env.ami.event("Hangup", Uniqueid="cust-h")
    assert hang["Cause"] == "17"
    assert env.hangup_seen == [True, True]
    st = await env.ami.event("VarSet", Uniqueid="cust-h", Variable="AGISTATUS")
    assert st["Value"] == "HANGUP"


async def test_hangup_by_regex_lists_the_channels(env: Env) -> None:
    """[25] Hangup with /regex/: an EventList ending in ChannelsHungupListComplete."""
    aid = env.ami.send("Hangup", Channel="/^PJSIP\\/seat001-/")
    first = await env.ami.response(aid)
    assert (first["EventList"], first["Message"]) == ("start", "Channels hung up will follow")
    done = await env.ami.event("ChannelsHungupListComplete")
    assert done["ListItems"] == "1" and done.action_id == aid
    await env.ami.wait_for(lambda m: m.is_event("Hangup") and m.get("Channel") == env.agent_channel)


async def test_originate_to_a_seat(env: Env) -> None:
    """A seat whose agent is on the phone answers busy; a free seat's softphone answers."""
    env.ami.send(
        "Originate",
        Channel="PJSIP/seat001",
        Application="Wait",
        Data="1",
        Async="true",
        ChannelId="to-seat1",
    )
    busy = await env.ami.event("OriginateResponse", Uniqueid="to-seat1")
    assert (busy["Response"], busy["Reason"]) == ("Failure", "0")
    assert (await env.ami.event("Hangup", Uniqueid="to-seat1"))["Cause"] == "17"
    env.ami.send(
        "Originate",
        Channel="PJSIP/seat002",
        Application="Wait",
        Data="1",
        Async="true",
        ChannelId="to-seat2",
        Timeout=2000,
    )
    nobody = await env.ami.event("OriginateResponse", Uniqueid="to-seat2")
    assert nobody["Reason"] == "3"  # no agent at that seat: it rings out
    env.ami.send(
        "Originate",
        Channel="PJSIP/seat999",
        Application="Wait",
        Data="1",
        Async="true",
        ChannelId="to-seat999",
    )
    bad = await env.ami.event("OriginateResponse", Channel="PJSIP/seat999")
    assert bad["Uniqueid"] == "<unknown>"  # beyond seat_count: no such endpoint [17]


async def test_actions_split_into_single_bytes_are_answered_alike() -> None:
    """The AMI server decodes actions however TCP cuts them (h11-style: byte by byte)."""
    pbx = SimPbx(secret=SECRET, speed=50.0)
    await pbx.start()
    client = AmiClient()
    try:
        await client.connect(pbx.ami_port)
        data = encode_action(
            "Login", {"Username": "dialer", "Secret": SECRET, "Events": "off"}, action_id="b1"
        ) + encode_action("Ping", action_id="b2")
        for i in range(len(data)):
            client.send_raw(data[i : i + 1])
            if i % 7 == 0:
                await asyncio.sleep(0)
        assert (await client.response("b1"))["Message"] == "Authentication accepted"
        assert (await client.response("b2"))["Ping"] == "Pong"
        assert client.banner == "Asterisk Call Manager/11.0.0"
    finally:
        await client.close()
        await pbx.close()


async def test_wrong_secret_is_refused_and_the_link_closed() -> None:
    """[02] Error / Authentication failed, then Asterisk closes the socket."""
    pbx = SimPbx(secret=SECRET, speed=50.0)
    await pbx.start()
    client = AmiClient()
    try:
        await client.connect(pbx.ami_port)
        r = await client.action("Login", Username="dialer", Secret="not-it")
        assert (r["Response"], r["Message"]) == ("Error", "Authentication failed")
        await asyncio.wait_for(client.closed.wait(), 10)  # fails if the link stays open
    finally:
        await client.close()
        await pbx.close()


async def test_supervisor_chanspy_on_an_agent(env: Env) -> None:
    """[24] Originate to a supervisor phone running ChanSpy: Spyer/Spyee blocks, no bridge."""
    env.ami.send(
        "Originate",
        Channel="PJSIP/sup01",
        Application="ChanSpy",
        Data=f"{env.agent_channel},qw",
        Async="true",
        ChannelId="spy-1",
    )
    start = await env.ami.event("ChanSpyStart", SpyerUniqueid="spy-1")
    assert start["SpyeeChannel"] == env.agent_channel
    assert start["SpyerChannel"].startswith("PJSIP/sup01-")
    await env.ami.action("Hangup", Channel=start["SpyerChannel"])
    stop = await env.ami.event("ChanSpyStop", SpyerUniqueid="spy-1")
    assert stop["SpyeeChannel"] == env.agent_channel
    assert not env.ami.events("BridgeEnter")


async def test_hangup_while_ringing_cancels_the_originate(env: Env) -> None:
    """AMI Hangup of a ringing outbound channel: DialEnd CANCEL, OriginateResponse Failure."""
    env.ami.send(
        "Originate",
        Channel="PJSIP/3001@carrier",
        Context="dialer-out",
        Exten="s",
        Priority=1,
        Async="true",
        ChannelId="cancel-1",
        Timeout=60000,
    )
    ringing = await env.ami.event("Newstate", Uniqueid="cancel-1", ChannelStateDesc="Ringing")
    await env.ami.action("Hangup", Channel=ringing["Channel"])
    end = await env.ami.event("DialEnd", DestUniqueid="cancel-1")
    orr = await env.ami.event("OriginateResponse", Uniqueid="cancel-1")
    hang = await env.ami.event("Hangup", Uniqueid="cancel-1")
    assert end["DialStatus"] == "CANCEL"
    assert (orr["Response"], orr["Reason"]) == ("Failure", "1")
    assert hang["Cause"] == "16"
