"""Simulated populations over loopback: agents' shifts and breaks, inbound callers, seeds, speed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from dialer.simpbx import SimAgentSpec, SimPbx, load_profile
from dialer.simpbx.profile import Dist, Profile
from tests.integration.simpbx_kit import AgiCall, AmiClient, ScriptedAgi

SECRET = "pop-secret"


def profile(**sections: dict[str, object]) -> Profile:
    """Defaults with some fields of some sections replaced."""
    prof = load_profile()
    for name, fields in sections.items():
        prof = dataclasses.replace(
            prof, **{name: dataclasses.replace(getattr(prof, name), **fields)}
        )
    return prof


class Controller:
    """A scripted controller: logs agents in (READY unless the PIN is wrong), records routes."""

    def __init__(self) -> None:
        self.seen: dict[str, list[dict[str, str]]] = {}
        self.pins: dict[str, str] = {}
        self.port = 0
        self.agi = ScriptedAgi(
            {
                "agent/login": self.login,
                "agent/pause": self.note("PAUSED"),
                "agent/unpause": self.note("READY"),
                "agent/logout": self.note(None),
                "ivr/main": self.ivr,
                "outbound/answered": self.answered,
            }
        )

    def note(self, state: str | None):  # type: ignore[no-untyped-def]
        async def route(call: AgiCall) -> None:
            self.seen.setdefault(call.path, []).append(call.query)
            if state is not None:
                await call.cmd(f"SET VARIABLE AGENT_STATE {state}")

        return route

    async def login(self, call: AgiCall) -> None:
        user = (await call.cmd("GET DATA agent-user 10000 6")).split("=", 1)[1]
        pin = (await call.cmd("GET DATA agent-pass 10000 6")).split("=", 1)[1]
        ok = self.pins.get(user) == pin
        self.seen.setdefault("agent/login", []).append({"user": user, "ok": str(ok), **call.query})
        if ok:
            await call.cmd(f"SET VARIABLE AGENTID {user}")
            await call.cmd("SET VARIABLE AGENT_STATE READY")
        else:
            await call.cmd("SET VARIABLE AGENT_STATE LOGGED_OUT")

    async def ivr(self, call: AgiCall) -> None:
        choice = (await call.cmd("GET DATA ivr-menu 5000 1")).split("=", 1)[1]
        self.seen.setdefault("ivr/main", []).append({"choice": choice, **call.query})
        await call.cmd("HANGUP")

    async def answered(self, call: AgiCall) -> None:
        amd = (await call.cmd("GET VARIABLE AMDSTATUS")).split("=", 1)[1]
        self.seen.setdefault("outbound/answered", []).append({"amd": amd, **call.query})
        await call.cmd("HANGUP")


@pytest.fixture
async def ctl() -> AsyncIterator[Controller]:
    c = Controller()
    await c.agi.start()
    c.port = c.agi.port
    yield c
    await c.agi.stop()


async def run_pbx(
    ctl: Controller,
    prof: Profile,
    agents: tuple[SimAgentSpec, ...] = (),
    speed: float = 100.0,
    seed: int = 5,
) -> tuple[SimPbx, AmiClient]:
    pbx = SimPbx(
        agi_port=ctl.port, secret=SECRET, speed=speed, seed=seed, agents=agents, profile=prof
    )
    for a in agents:
        ctl.pins[a.agent_number] = a.pin
    await pbx.start()
    ami = AmiClient()
    await ami.connect(pbx.ami_port)
    await ami.login(SECRET)
    return pbx, ami


async def test_agent_takes_breaks_and_logs_out_at_the_end_of_the_shift(ctl: Controller) -> None:
    """*1 / *2 around breaks through agent/pause and agent/unpause, then *9 or a hang-up."""
    prof = profile(
        agents={
            "login_spread": 0.0,
            "wrong_pin_share": 0.0,
            "break_every": 60.0,
            "break_length": Dist(30.0),
            "shift": 400.0,
        }
    )
    pbx, ami = await run_pbx(ctl, prof, (SimAgentSpec("2001", "9999", "seat004"),))
    try:
        hang = await ami.wait_for(
            lambda m: m.is_event("Hangup") and m.get("Channel", "").startswith("PJSIP/seat004-"),
            limit=30,
        )
    finally:
        await ami.close()
        await pbx.close()
    assert ctl.seen["agent/login"][0]["seat"] == "seat004"
    pauses, unpauses = ctl.seen.get("agent/pause", []), ctl.seen.get("agent/unpause", [])
    assert pauses and all(p == {"agent": "2001"} for p in pauses)
    assert len(unpauses) in (len(pauses), len(pauses) - 1)
    codes = [
        m["Exten"]
        for m in ami.events("Newexten")
        if m.get("Context") == "dialer-agent-loop"
        and m.get("Priority") == "1"
        and m.get("Exten", "s") not in ("s", "t", "i")
    ]
    assert codes[: 2 * len(unpauses)] == ["*1", "*2"] * len(unpauses)
    # a shift ends with *9 (agent/logout, Hangup(16)) or by hanging up the softphone
    assert hang["Cause"] == "16"
    assert "agent/logout" in ctl.seen or codes[-1:] != ["*9"]


async def test_wrong_pin_then_retry(ctl: Controller) -> None:
    """A wrong PIN: LOGGED_OUT -> agent-incorrect&vm-goodbye, Hangup(16); the agent retries."""
    prof = profile(agents={"login_spread": 0.0, "wrong_pin_share": 1.0, "break_every": 0.0})
    pbx, ami = await run_pbx(ctl, prof, (SimAgentSpec("2002", "1357", "seat005"),))
    try:
        await ami.event("Newexten", limit=30, Context="dialer-agent-loop", Application="WaitExten")
    finally:
        await ami.close()
        await pbx.close()
    logins = ctl.seen["agent/login"]
    assert [x["ok"] for x in logins] == ["False", "True"]
    bye = [m for m in ami.events("Newexten") if m.get("AppData") == "agent-incorrect&vm-goodbye"]
    assert len(bye) == 1
    assert pbx.stats()["agent_logins_dialled"] == 2


async def test_absent_agents_never_log_in(ctl: Controller) -> None:
    prof = profile(agents={"login_spread": 0.0, "absent_share": 1.0})
    pbx, ami = await run_pbx(ctl, prof, (SimAgentSpec("2003", "1", "seat006"),))
    await ami.close()
    await pbx.close()
    assert pbx.stats()["agents"] == {"2003": "absent"}
    assert "agent/login" not in ctl.seen


async def test_inbound_callers_reach_the_ivr_route_with_their_did(ctl: Controller) -> None:
    """Poisson arrivals on the DIDs -> dialer-inbound -> FastAGI ivr/main?did= [26]."""
    prof = profile(
        inbound={"arrivals_per_hour": 3600.0, "dids": ("5551000", "5552000"), "choices": {"2": 1.0}}
    )
    pbx, ami = await run_pbx(ctl, prof, speed=50.0)
    try:
        calls = await ctl.agi.wait_calls("ivr/main", n=3, limit=30, done=True)
    finally:
        await ami.close()
        await pbx.close()
    for call in calls:
        assert call.query["did"] in ("5551000", "5552000")
        assert call.env["agi_context"] == "dialer-inbound"
        assert call.env["agi_extension"] == call.query["did"] == call.env["agi_dnid"]
        assert call.env["agi_callerid"].startswith("98") and call.env["agi_type"] == "PJSIP"
    assert all(x["choice"] == "2" for x in ctl.seen["ivr/main"])
    news = [m for m in ami.events("Newchannel") if m.get("Context") == "dialer-inbound"]
    assert news and all(m["ChannelStateDesc"] == "Ring" for m in news)


async def test_inbound_with_the_controller_down_is_announced(ctl: Controller) -> None:
    """dialer-inbound: AGISTATUS=FAILURE -> UserEvent DialerInboundDown, ss-noservice."""
    await ctl.agi.stop()
    prof = profile(inbound={"arrivals_per_hour": 3600.0})
    pbx, ami = await run_pbx(ctl, prof, speed=50.0)
    try:
        ev = await ami.event("UserEvent", limit=30, UserEvent="DialerInboundDown")
        pb = await ami.event("Newexten", limit=30, Application="Playback", AppData="ss-noservice")
        hang = await ami.event("Hangup", limit=30, Uniqueid=pb["Uniqueid"])
    finally:
        await ami.close()
        await pbx.close()
    assert ev["DID"] == "5551000" and ev["Caller"].startswith("98")
    assert hang["Cause"] == "16"


async def outcomes(ctl: Controller, seed: int) -> dict[str, str]:
    """Dial 40 unpinned numbers; return number -> how it ended."""
    prof = profile(called={"ring": Dist(1.0, 0.5, 0.1, 3.0), "hangup_during_amd": 0.0})
    prof = dataclasses.replace(prof, pins=())
    pbx, ami = await run_pbx(ctl, prof, speed=200.0, seed=seed)
    try:
        for i in range(40):
            ami.send(
                "Originate",
                Channel=f"PJSIP/98{i:08d}@carrier",
                Context="dialer-out",
                Exten="s",
                Priority=1,
                Async="true",
                ChannelId=f"s{seed}-{i}",
                Timeout=20000,
                Variable=["CALLID=x", "DIALER_AMD=1"],
            )
        for i in range(40):
            await ami.event("OriginateResponse", limit=30, Uniqueid=f"s{seed}-{i}")
        await asyncio.wait_for(pbx.wait_idle(), 30)
    finally:
        await ami.close()
        await pbx.close()
    out = {}
    for m in ami.events("OriginateResponse"):
        i = m["Uniqueid"].split("-")[1]
        amd = [
            v["Value"]
            for v in ami.events("VarSet")
            if v.get("Uniqueid") == m["Uniqueid"] and v.get("Variable") == "AMDSTATUS"
        ]
        out[i] = f"{m['Reason']}/{amd[0] if amd else '-'}"
    return out


async def test_same_seed_same_fates_other_seed_other_fates(ctl: Controller) -> None:
    """Each call's fate comes from the seed and its identity, not from interleaving."""
    a = await outcomes(ctl, 11)
    b = await outcomes(ctl, 11)
    c = await outcomes(ctl, 12)
    assert len(a) == 40 and a == b
    assert a != c
    assert {v.split("/")[0] for v in a.values()} >= {"0", "4"}


async def test_speed_scales_simulated_time(ctl: Controller) -> None:
    """Timestamps are simulated time: a 3 s pinned ring shows as ~3 s at speed 100."""
    prof = profile()
    pbx, ami = await run_pbx(ctl, prof, speed=100.0)
    try:
        ami.send(
            "Originate",
            Channel="PJSIP/1001@carrier",
            Application="Wait",
            Data="2",
            Async="true",
            ChannelId="t-1",
        )
        begin = await ami.event("DialBegin", DestUniqueid="t-1")
        orr = await ami.event("OriginateResponse", Uniqueid="t-1")
        hang = await ami.event("Hangup", Uniqueid="t-1")
    finally:
        await ami.close()
        await pbx.close()
    ring = float(orr["Timestamp"]) - float(begin["Timestamp"])
    talk = float(hang["Timestamp"]) - float(orr["Timestamp"])
    assert 2.9 < ring < 4.5 and 1.9 < talk < 3.5


async def test_ivr_applications_used_by_the_inbound_flow(ctl: Controller) -> None:
    """EXEC StartMusicOnHold/StopMusicOnHold, SayNumber, Read, Record (RECORD_STATUS)."""
    replies: dict[str, str] = {}

    async def ivr(call: AgiCall) -> None:
        replies["moh"] = await call.cmd("EXEC StartMusicOnHold default")
        replies["say"] = await call.cmd("EXEC SayNumber 3")
        replies["stop"] = await call.cmd("EXEC StopMusicOnHold")
        replies["read"] = await call.cmd('EXEC Read "CHOICE,ivr-menu,1"')
        replies["choice"] = await call.cmd("GET VARIABLE CHOICE")
        replies["record"] = await call.cmd('EXEC Record "/tmp/m-1.wav,3,60,k"')
        replies["status"] = await call.cmd("GET VARIABLE RECORD_STATUS")
        replies["nosuch"] = await call.cmd("EXEC NoSuchApp x")
        await call.cmd("HANGUP")

    ctl.agi.routes["ivr/main"] = ivr
    prof = profile(inbound={"choices": {"2": 1.0}, "talk": Dist(40.0)})
    pbx, ami = await run_pbx(ctl, prof, speed=100.0)
    try:
        from dialer.simpbx.model import plan_inbound

        pbx.inbound_call("5551000", "9811112222", plan_inbound(prof, pbx.rng("x")))
        await ctl.agi.wait_calls("ivr/main", done=True, limit=30)
        await asyncio.wait_for(pbx.wait_idle(), 30)
    finally:
        await ami.close()
        await pbx.close()
    assert replies == {
        "moh": "200 result=0",
        "say": "200 result=0",
        "stop": "200 result=0",
        "read": "200 result=0",
        "choice": "200 result=1 (2)",
        "record": "200 result=0",
        "status": "200 result=1 (SILENCE)",
        "nosuch": "200 result=-2",
    }
    start = ami.events("MusicOnHoldStart")
    assert len(start) == 1 and start[0]["Class"] == "default"
    assert len(ami.events("MusicOnHoldStop")) == 1


async def test_agents_keep_trying_until_the_controller_is_up(ctl: Controller) -> None:
    """Controller down: ss-noservice and a hang-up; the softphone dials again later."""
    port = ctl.port
    await ctl.agi.stop()
    prof = profile(agents={"login_spread": 0.0, "wrong_pin_share": 0.0, "break_every": 0.0})
    pbx, ami = await run_pbx(ctl, prof, (SimAgentSpec("2004", "2468", "seat007"),))
    try:
        await ami.event("Newexten", limit=30, Application="Playback", AppData="ss-noservice")
        await ctl.agi.start(port)
        await ami.event("Newexten", limit=30, Context="dialer-agent-loop", Application="WaitExten")
    finally:
        await ami.close()
        await pbx.close()
    assert [x["ok"] for x in ctl.seen["agent/login"]] == ["True"]
    assert pbx.stats()["agent_logins_dialled"] >= 2
