"""The simulator over real loopback sockets: AMI login, Originate outcomes, the dialer-out path.

Every expectation here is a recorded Asterisk 22 behaviour (trace numbers in the test names'
docstrings, see ../shared/asterisk/README.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from dialer.simpbx import SimAgentSpec, SimPbx, load_profile
from dialer.simpbx.profile import Profile
from tests.integration.simpbx_kit import AgiCall, AmiClient, ScriptedAgi

SECRET = "sim-test-secret"
SPEED = 50.0


def quick_profile(**agents: object) -> Profile:
    """Default profile, agents log in at once and never pause unless told."""
    prof = load_profile()
    opts: dict[str, object] = {"login_spread": 0.0, "break_every": 0.0, "wrong_pin_share": 0.0}
    opts.update(agents)
    return dataclasses.replace(prof, agents=dataclasses.replace(prof.agents, **opts))


class Rig:
    """A simulator, a scripted FastAGI server and a logged-in AMI client."""

    def __init__(self) -> None:
        self.agent_channel: dict[str, str] = {}
        self.bridge_target: str | None = None
        self.bridge_opts = "hF(dialer-agent-wrapup^s^1)"
        self.agi = ScriptedAgi(
            {
                "agent/login": self.login,
                "outbound/answered": self.answered,
                "agent/wrapup": self.wrapup,
                "agent/pause": self.pause,
                "agent/unpause": self.unpause,
                "agent/logout": self.logout,
            }
        )
        self.pbx: SimPbx | None = None
        self.ami = AmiClient()
        self.results: dict[str, list[str]] = {}

    async def login(self, c: AgiCall) -> None:
        user = (await c.cmd("GET DATA agent-user 10000 6")).split("=", 1)[1]
        pin = (await c.cmd("GET DATA agent-pass 10000 6")).split("=", 1)[1]
        self.results.setdefault("login", []).append(f"{user}:{pin}")
        await c.cmd(f"SET VARIABLE AGENTID {user}")
        await c.cmd("SET VARIABLE AGENT_STATE READY")
        self.agent_channel[user] = c.env["agi_channel"]

    async def answered(self, c: AgiCall) -> None:
        amd = await c.cmd("GET VARIABLE AMDSTATUS")
        self.results.setdefault("amd", []).append(amd)
        target = self.bridge_target or next(iter(self.agent_channel.values()), "PJSIP/nobody")
        r = await c.cmd(f"EXEC Bridge {target},{self.bridge_opts}")
        res = await c.cmd("GET VARIABLE BRIDGERESULT")
        self.results.setdefault("bridge", []).append(f"{r}|{res}|{c.got_hangup}")
        if "NONEXISTENT" in res:
            r = await c.cmd("EXEC Playback tt-allbusy")
            r2 = await c.cmd("HANGUP")
            self.results.setdefault("abandon", []).append(f"{r}|{r2}")

    async def wrapup(self, c: AgiCall) -> None:
        r = await c.cmd("GET DATA beep 60000 3")
        code = r.split("=", 1)[1]
        await c.cmd(f"SET VARIABLE DISPOSITION {code}")
        await c.cmd("SET VARIABLE AGENT_STATE READY")
        self.results.setdefault("dispo", []).append(code)

    async def pause(self, c: AgiCall) -> None:
        await c.cmd("SET VARIABLE AGENT_STATE PAUSED")
        self.results.setdefault("pause", []).append(c.query.get("agent", ""))

    async def unpause(self, c: AgiCall) -> None:
        await c.cmd("SET VARIABLE AGENT_STATE READY")
        self.results.setdefault("unpause", []).append(c.query.get("agent", ""))

    async def logout(self, c: AgiCall) -> None:
        self.results.setdefault("logout", []).append(c.query.get("agent", ""))

    async def start(
        self,
        *,
        agents: tuple[SimAgentSpec, ...] = (),
        profile: Profile | None = None,
        agi_up: bool = True,
        speed: float = SPEED,
    ) -> None:
        await self.agi.start()
        port = self.agi.port
        if not agi_up:
            await self.agi.stop()
        self.pbx = SimPbx(
            agi_port=port,
            secret=SECRET,
            speed=speed,
            seed=7,
            agents=agents,
            profile=profile or quick_profile(),
        )
        await self.pbx.start()
        await self.ami.connect(self.pbx.ami_port)
        r = await self.ami.login(SECRET)
        assert r["Response"] == "Success"

    async def close(self) -> None:
        await self.ami.close()
        if self.pbx is not None:
            await self.pbx.close()
        await self.agi.stop()

    def originate(self, channel: str, call_id: str, **extra: object) -> str:
        headers: dict[str, object] = {
            "Channel": channel,
            "Context": "dialer-out",
            "Exten": "s",
            "Priority": 1,
            "Timeout": 30000,
            "CallerID": '"Dialer" <5550000>',
            "Async": "true",
            "ChannelId": call_id,
            "OtherChannelId": f"{call_id}-2",
            "Variable": [f"CALLID={call_id}", "DIALER_AMD=1", "ABANDON_PROMPT=tt-allbusy"],
        }
        headers.update(extra)
        return self.ami.send("Originate", **headers)

    def seq(self, uid: str, names: tuple[str, ...]) -> list[str]:
        """Event names (in order) about the channel ``uid``, restricted to ``names``."""
        out = []
        for m in self.ami.events():
            if m.name not in names:
                continue
            if uid in (m.get("Uniqueid"), m.get("DestUniqueid")):
                out.append(m.name)
        return out


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    yield r
    await r.close()


CALL_EVENTS = (
    "Newchannel",
    "Newstate",
    "DialBegin",
    "DialEnd",
    "HangupRequest",
    "Hangup",
    "OriginateResponse",
)


@pytest.mark.parametrize(
    ("number", "status", "cause", "techcause", "seq"),
    [
        (
            "2001",
            "BUSY",
            "17",
            "486",
            [
                "Newchannel",
                "DialBegin",
                "Newstate",
                "HangupRequest",
                "DialEnd",
                "OriginateResponse",
                "Hangup",
            ],
        ),
        (
            "4001",
            "CONGESTION",
            "34",
            "503",
            ["Newchannel", "DialBegin", "HangupRequest", "DialEnd", "OriginateResponse", "Hangup"],
        ),
    ],
)
async def test_pjsip_failures_give_reason_0_and_the_cause_on_hangup(
    rig: Rig, number: str, status: str, cause: str, techcause: str, seq: list[str]
) -> None:
    """[13, 15] PJSIP busy/503: Reason 0; DialEnd DialStatus and Hangup Cause tell them apart."""
    await rig.start()
    aid = rig.originate(f"PJSIP/{number}@carrier", f"c-{number}")
    assert (await rig.ami.response(aid))["Message"] == "Originate successfully queued"
    orr = await rig.ami.event("OriginateResponse", Uniqueid=f"c-{number}")
    assert (orr["Response"], orr["Reason"], orr["Channel"]) == (
        "Failure",
        "0",
        f"PJSIP/{number}@carrier",
    )
    assert orr.action_id == aid
    hang = await rig.ami.event("Hangup", Uniqueid=f"c-{number}")
    assert hang["Cause"] == cause and hang["TechCause"] == techcause
    assert hang["Channel"].startswith("PJSIP/carrier-")
    assert (await rig.ami.event("DialEnd", DestUniqueid=f"c-{number}"))["DialStatus"] == status
    assert rig.seq(f"c-{number}", CALL_EVENTS) == seq


async def test_pjsip_timeout_gives_reason_3_and_no_dialend(rig: Rig) -> None:
    """[14] ring past the Originate Timeout: Reason 3, Hangup 19, no DialEnd."""
    await rig.start()
    rig.originate("PJSIP/3001@carrier", "c-3001", Timeout=8000)
    orr = await rig.ami.event("OriginateResponse", Uniqueid="c-3001")
    assert (orr["Response"], orr["Reason"]) == ("Failure", "3")
    hang = await rig.ami.event("Hangup", Uniqueid="c-3001")
    assert hang["Cause"] == "19"
    assert "DialEnd" not in rig.seq("c-3001", CALL_EVENTS)


@pytest.mark.parametrize(("number", "reason", "cause2"), [("2001", "5", "17"), ("4001", "8", "34")])
async def test_local_busy_and_congestion_reasons(
    rig: Rig, number: str, reason: str, cause2: str
) -> None:
    """[13L, 15L] through Local: Reason 5/8, ;1 Hangup cause 0, the real cause on ;2."""
    await rig.start()
    rig.originate(f"Local/{number}@lab-carrier", f"l-{number}")
    orr = await rig.ami.event("OriginateResponse", Uniqueid=f"l-{number}")
    assert orr["Reason"] == reason and orr["Channel"] == f"Local/{number}@lab-carrier"
    one = await rig.ami.event("Hangup", Uniqueid=f"l-{number}")
    two = await rig.ami.event("Hangup", Uniqueid=f"l-{number}-2")
    assert one["Cause"] == "0" and two["Cause"] == cause2
    assert one["Channel"].endswith(";1") and two["Channel"].endswith(";2")
    assert one["Linkedid"] == two["Linkedid"] == f"l-{number}"


async def test_bad_channel_has_unknown_uniqueid_and_no_channel_events(rig: Rig) -> None:
    """[17] FOO/bar: queued, then a Failure OriginateResponse, Uniqueid <unknown>, nothing else."""
    await rig.start()
    aid = rig.ami.send(
        "Originate",
        Channel="FOO/bar",
        Application="Wait",
        Data="1",
        Async="true",
        ChannelId="bad-1",
    )
    assert (await rig.ami.response(aid))["Response"] == "Success"
    orr = await rig.ami.event("OriginateResponse", Channel="FOO/bar")
    assert (orr["Response"], orr["Reason"], orr["Uniqueid"]) == ("Failure", "0", "<unknown>")
    sync = await rig.ami.action("Originate", Channel="FOO/bar", Application="Wait", Data="1")
    assert (sync["Response"], sync["Message"]) == ("Error", "Originate failed")
    assert not rig.ami.events("Newchannel") and not rig.ami.events("Hangup")


async def test_answered_call_is_bridged_to_a_logged_in_agent_and_wrapped_up(rig: Rig) -> None:
    """[28, 34] login by GET DATA, AMD, EXEC Bridge, customer hangs up, F() -> wrap-up."""
    await rig.start(agents=(SimAgentSpec("1001", "4321", "seat001"),))
    await rig.ami.event("Newexten", Context="dialer-agent-loop", Application="WaitExten")
    assert rig.results["login"] == ["1001:4321"]
    rig.originate("PJSIP/1001@carrier", "call-1")
    orr = await rig.ami.event("OriginateResponse", Uniqueid="call-1")
    assert orr["Response"] == "Success" and orr["Reason"] == "4"
    assert orr["Channel"].startswith("PJSIP/carrier-")
    amd = await rig.ami.event("VarSet", Uniqueid="call-1", Variable="AMDSTATUS")
    assert amd["Value"] == "HUMAN"
    ue = await rig.ami.event("UserEvent", UserEvent="DialerAMD")
    assert ue["Call"] == "call-1" and ue["AMDStatus"] == "HUMAN"
    enters = [await rig.ami.event("BridgeCreate")]
    first = await rig.ami.event("BridgeEnter")
    assert first["Channel"].startswith("PJSIP/seat001-")  # the agent enters first [18, 28]
    await rig.ami.event("UserEvent", UserEvent="AgentWrapup")
    hang = await rig.ami.event("Hangup", Uniqueid="call-1")
    assert hang["Cause"] == "16"
    await rig.agi.wait_calls("agent/wrapup", done=True)
    assert rig.results["dispo"][0] in {"1", "2", "3", "4"}
    assert rig.results["bridge"] == ["200 result=0|200 result=1 (SUCCESS)|True"]
    assert enters and rig.pbx is not None and rig.pbx.stats()["bridged"] == 1


async def test_fastagi_down_plays_the_abandon_message(rig: Rig) -> None:
    """[32] no FastAGI server: AGISTATUS=FAILURE, UserEvent DialerAbandon, Playback, Hangup(16)."""
    await rig.start(agi_up=False)
    rig.originate("PJSIP/1002@carrier", "call-2")
    fail = await rig.ami.event("VarSet", Uniqueid="call-2", Variable="AGISTATUS")
    assert fail["Value"] == "FAILURE"
    ab = await rig.ami.event("UserEvent", UserEvent="DialerAbandon")
    assert ab["Call"] == "call-2" and ab["AGISTATUS"] == "FAILURE"
    pb = await rig.ami.event("Newexten", Uniqueid="call-2", Application="Playback")
    assert pb["AppData"] == "tt-allbusy"
    hang = await rig.ami.event("Hangup", Uniqueid="call-2")
    assert hang["Cause"] == "16"


async def test_bridge_to_a_vanished_agent_is_nonexistent(rig: Rig) -> None:
    """[31] EXEC Bridge to a gone channel answers 200 result=0; BRIDGERESULT=NONEXISTENT."""
    prof = quick_profile()
    patient = dataclasses.replace(prof.called.patience, low=60.0)
    await rig.start(
        profile=dataclasses.replace(prof, called=dataclasses.replace(prof.called, patience=patient))
    )
    rig.bridge_target = "PJSIP/seat009-00000042"
    rig.originate("PJSIP/1003@carrier", "call-3")
    await rig.ami.event("Hangup", Uniqueid="call-3")
    assert rig.results["bridge"][0].startswith("200 result=0|200 result=1 (NONEXISTENT)")
    assert not rig.ami.events("BridgeCreate")
    assert rig.results["abandon"] == ["200 result=0|200 result=1"]


async def test_agent_codes_pause_and_unpause_as_newexten(rig: Rig) -> None:
    """[28] *1 / *2 in WaitExten: DTMF events, Newexten with Extension *1, FastAGI pause route."""
    await rig.start(agents=(SimAgentSpec("1002", "1111", "seat002"),))
    await rig.ami.event("Newexten", Context="dialer-agent-loop", Application="WaitExten")
    assert rig.pbx is not None
    agent = rig.pbx.agents[0]
    await agent.press("*1")
    ext = await rig.ami.event("Newexten", Context="dialer-agent-loop", Exten="*1")
    assert ext["Application"] == "AGI" and "agent/pause?agent=1002" in ext["AppData"]
    await rig.agi.wait_calls("agent/pause", done=True)
    await rig.ami.event("VarSet", Variable="AGENT_STATE", Value="PAUSED")
    await rig.ami.wait_for(
        lambda m: (
            m.is_event("Newexten") and m.get("Exten") == "s" and m.get("Application") == "WaitExten"
        ),
        start=len(rig.ami.frames) - 1,
    )
    await agent.press("*2")
    await rig.agi.wait_calls("agent/unpause", done=True)
    digits = [m["Digit"] for m in rig.ami.events("DTMFEnd")]
    assert digits[-4:] == ["*", "1", "*", "2"]
    await agent.hang_up()
    hang = await rig.ami.wait_for(
        lambda m: m.is_event("Hangup") and m.get("Channel", "").startswith("PJSIP/seat002-")
    )
    assert hang["Cause"] == "16"


async def test_disconnect_code_ends_the_customer_leg_but_keeps_the_agent(rig: Rig) -> None:
    """[30] Bridge option h + *0: both leave the bridge, the agent goes to wrap-up, stays up."""
    prof = quick_profile()
    prof = dataclasses.replace(prof, called=dataclasses.replace(prof.called, party_hangs_up=0.0))
    await rig.start(agents=(SimAgentSpec("1003", "2222", "seat003"),), profile=prof)
    await rig.ami.event("Newexten", Context="dialer-agent-loop", Application="WaitExten")
    rig.originate("PJSIP/1004@carrier", "call-4")
    await rig.ami.event("BridgeEnter", Uniqueid="call-4")
    leave = await rig.ami.event("BridgeLeave")
    assert leave["Channel"].startswith("PJSIP/seat003-")  # the agent leaves first [30]
    digits = [m["Digit"] for m in rig.ami.events("DTMFEnd")]
    assert digits[-2:] == ["*", "0"]
    res = await rig.ami.event("VarSet", Uniqueid="call-4", Variable="BRIDGERESULT")
    assert res["Value"] == "SUCCESS"
    await rig.ami.event("UserEvent", UserEvent="AgentWrapup")
    agent_hangups = [
        m for m in rig.ami.events("Hangup") if m.get("Channel", "").startswith("PJSIP/seat003-")
    ]
    assert not agent_hangups


async def test_originate_answer_into_an_application_uses_the_channel_name(rig: Rig) -> None:
    """[12] answered Originate with Application: Success, Reason 4, the real channel name."""
    await rig.start()
    rig.ami.send(
        "Originate",
        Channel="PJSIP/1005@carrier",
        Application="Wait",
        Data="1",
        Async="true",
        ChannelId="app-1",
        Timeout=30000,
    )
    orr = await rig.ami.event("OriginateResponse", Uniqueid="app-1")
    assert orr["Reason"] == "4" and orr["Application"] == "Wait" and orr["Data"] == "1"
    hang = await rig.ami.event("Hangup", Uniqueid="app-1")
    assert hang["Cause"] == "0"
    await asyncio.sleep(0)
