"""Every recorded AMI trace decodes the same whole, byte by byte and in random pieces.

Then, per trace, the facts ../shared/asterisk/README.md lists for it are asserted on the
decoded messages, and every action of the matching ``.sent`` file is run through the
ActionTracker: each gets exactly one result, list actions with all their items.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from dialer.protocol.ami import (
    ActionResult,
    ActionTracker,
    AmiDecoder,
    Banner,
    Frame,
    Message,
    decode_bytes,
    encode_banner,
    encode_message,
    md5_key,
)
from tests.conftest import TRACES

AMI_TRACES = sorted(TRACES.glob("*.ami")) if TRACES.is_dir() else []


def _decode_in_pieces(data: bytes, cuts: list[int]) -> list[Frame]:
    dec = AmiDecoder()
    out: list[Frame] = []
    prev = 0
    for cut in [*cuts, len(data)]:
        out += dec.feed(data[prev:cut])
        prev = cut
    last = dec.close()
    if last is not None:
        out.append(last)
    return out


@dataclass
class Trace:
    """A decoded capture plus the actions that were sent on that connection."""

    path: Path

    @cached_property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @cached_property
    def frames(self) -> list[Frame]:
        return decode_bytes(self.data)

    @cached_property
    def messages(self) -> list[Message]:
        return [f for f in self.frames if isinstance(f, Message)]

    @cached_property
    def sent(self) -> list[Message]:
        sent = self.path.with_suffix(".sent")
        if not sent.exists():
            return []
        dec = AmiDecoder(expect_banner=False)
        msgs = [m for m in dec.feed(sent.read_bytes()) if isinstance(m, Message)]
        return msgs

    def events(self, name: str) -> list[Message]:
        return [m for m in self.messages if m.is_event(name)]

    def response(self, action_id: str) -> Message:
        found = [m for m in self.messages if m.kind == "response" and m.action_id == action_id]
        assert len(found) == 1, f"{action_id}: {len(found)} responses"
        return found[0]

    @cached_property
    def results(self) -> dict[str, ActionResult]:
        tracker = ActionTracker()
        for action in self.sent:
            if action.action_id is not None:
                tracker.start(action.action_id)
        out: dict[str, ActionResult] = {}
        for msg in self.messages:
            done = tracker.feed(msg)
            if done is not None:
                assert done.action_id not in out
                out[done.action_id] = done
        return out


@pytest.fixture(params=AMI_TRACES, ids=[p.name for p in AMI_TRACES])
def trace(request: pytest.FixtureRequest) -> Trace:
    return Trace(request.param)


def test_the_corpus_is_there() -> None:
    assert len(AMI_TRACES) >= 40


def test_whole_bytewise_and_random_splits_agree(trace: Trace) -> None:
    whole = trace.frames
    assert isinstance(whole[0], Banner)
    assert whole[0].text == "Asterisk Call Manager/11.0.0"
    assert whole[0].version == "11.0.0"
    data = trace.data
    assert _decode_in_pieces(data, list(range(1, len(data)))) == whole
    rng = random.Random(trace.path.name)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 60))))
        assert _decode_in_pieces(data, cuts) == whole


def test_nothing_is_lost(trace: Trace) -> None:
    """Every header line of the capture is in a decoded message; every message is whole."""
    lines = [ln for ln in trace.data.split(b"\r\n")[1:] if ln]
    headers = [h for m in trace.messages for h in m.headers]
    assert len(headers) == len(lines)
    assert trace.data.endswith(b"\r\n\r\n")
    assert all(m.kind in ("event", "response") for m in trace.messages)
    # Headers survive a round trip through the lazy and the indexed lookups alike.
    for m in trace.messages:
        for key, _value in m.headers:
            assert m.get(key) == next(v for k, v in m.headers if k.lower() == key.lower())
            assert key.upper() in m
        assert m.get("No-Such-Header") is None


def test_re_encoding_gives_back_every_byte(trace: Trace) -> None:
    """Nothing is dropped or altered: the decoded frames encode to the capture, byte for byte."""
    banner = trace.frames[0]
    assert isinstance(banner, Banner)
    again = encode_banner(banner.text) + b"".join(encode_message(m) for m in trace.messages)
    assert again == trace.data


def test_every_sent_action_gets_exactly_one_result(trace: Trace) -> None:
    ids = [a.action_id for a in trace.sent if a.action_id is not None]
    results = trace.results
    if trace.path.name.startswith("27-shutdown-and-reconnect.ami"):
        assert set(results) == {"login-1"}  # Asterisk went down: nothing else was asked
        return
    assert set(results) == set(ids)
    for result in results.values():
        if result.complete is not None:
            items = result.complete.get("ListItems")
            assert items is not None
            assert int(items) == len(result.events)
            assert all(e.action_id == result.action_id for e in result.events)
            assert all("Timestamp" not in e for e in result.events)


# --------------------------------------------------------------------------- per-trace facts


def f01(t: Trace) -> None:
    login = t.response("login-01")
    assert (login.name, login["Message"]) == ("Success", "Authentication accepted")
    after = t.messages[t.messages.index(login) + 1 :]
    assert after[0].is_event("FullyBooted") and "Timestamp" not in after[0]
    assert after[1].is_event("SuccessfulAuth")
    bye = t.response("logoff-1")
    assert (bye.name, bye["message"]) == ("Goodbye", "Thanks for all the fish.")


def f02(t: Trace) -> None:
    err = t.response("login-02")
    assert (err.name, err["Message"]) == ("Error", "Authentication failed")
    assert t.messages == [err]  # then EOF


def f03(t: Trace) -> None:
    ch = t.response("challenge-03")
    assert ch.name == "Success" and ch["Challenge"] == "213370826" and "Message" not in ch
    assert md5_key(ch["Challenge"], "dialerpass") == "dbc29616b3b08a251817e8c58e15187f"
    assert md5_key("1", "x") == hashlib.md5(b"1x").hexdigest()
    assert t.response("login-03")["Message"] == "Authentication accepted"


def f03_wrongkey(t: Trace) -> None:
    assert t.response("challenge-03b")["Challenge"].isdigit()
    assert t.response("login-03b")["Message"] == "Authentication failed"


def f04(t: Trace) -> None:
    # Events: off -> no events before the Events action, not even the first OriginateResponse.
    events_on = t.messages.index(t.response("events-04"))
    assert all(m.kind == "response" for m in t.messages[:events_on])
    assert t.response("events-04")["Events"] == "On" and "Message" not in t.response("events-04")
    assert t.response("events-04off")["Events"] == "Off"
    evs = [m for m in t.messages if m.kind == "event"]
    assert evs and all(m["Privilege"] == "call,all" for m in evs)
    assert not t.events("Newexten") and not t.events("VarSet")
    [orig] = t.events("OriginateResponse")
    assert orig.action_id == "orig-04b" and orig["Reason"] == "4"


def f05(t: Trace) -> None:
    pong = t.response("ping-05")
    assert pong["Ping"] == "Pong" and "." in pong["Timestamp"]
    anon = [m for m in t.messages if m.get("Ping") == "Pong" and m.action_id is None]
    assert len(anon) == 1


def f06(t: Trace) -> None:
    out = t.response("cmd-06")
    assert out["Message"] == "Command output follows"
    assert out.get_all("Output")[1:] == [
        "0 active channels",
        "0 active calls",
        "134 calls processed",
    ]
    assert t.response("cmd-06b").get_all("output")[0].startswith("Asterisk GIT-22-")
    bad = t.response("cmd-06c")
    assert bad.name == "Error" and bad["Message"] == "Command output follows"
    assert bad["Output"].startswith("No such command")
    assert not any("--END COMMAND--" in v for m in t.messages for _, v in m.headers)


def f07(t: Trace) -> None:
    res = t.results["csc-07"]
    assert res.response["EventList"] == "start"
    assert res.response["Message"] == "Channels will follow"
    assert len(res.events) == 6 and all(e.is_event("CoreShowChannel") for e in res.events)
    assert all("Privilege" not in e and "Timestamp" not in e for e in res.events)
    assert {e["Duration"].count(":") for e in res.events} == {2}
    assert all("BridgeId" in e and e["Uniqueid"] and e["Linkedid"] for e in res.events)
    assert res.complete is not None and res.complete.is_event("CoreShowChannelsComplete")
    assert res.complete["EventList"] == "Complete" and res.complete["ListItems"] == "6"


def f08(t: Trace) -> None:
    allres = t.results["status-all-08"]
    assert allres.response["Message"] == "Channel status will follow"
    assert len(allres.events) == 6
    assert all(e["Privilege"] == "Call" and e["Type"] == "Local" for e in allres.events)
    assert all("Seconds" in e for e in allres.events)
    assert allres.complete is not None
    assert allres.complete["ListItems"] == allres.complete["Items"] == "6"
    [one] = t.results["status-one-08"].events
    assert one["Channel"] == "Local/1001@lab-carrier-0000003f;1"
    [withvars] = t.results["status-vars-08"].events
    assert [v.split("=", 1)[0] for v in withvars.get_all("Variable")] == ["CAMPAIGN", "LEADID"]
    bad = t.results["status-bad-08"]
    assert (bad.response.name, bad.response["Message"]) == ("Error", "No such channel")
    assert bad.complete is None and bad.events == ()


def f09(t: Trace) -> None:
    getvars = [m for m in t.messages if (m.action_id or "").startswith("getvar")]
    assert getvars and all("Message" not in m for m in getvars if m.name == "Success")
    values = {m["Variable"]: m["Value"] for m in getvars if m.name == "Success"}
    assert values.get("RINGDELAY") == "3"
    assert "" in values.values()  # an unset variable is an empty Value, not an error
    assert any(" " in v for v in values.values())  # values with spaces verbatim
    setvars = [m for m in t.messages if (m.action_id or "").startswith("setvar")]
    assert any(m.get("Message") == "Variable Set" for m in setvars)
    assert any(m.name == "Error" and m["Message"] == "No such channel" for m in t.messages)


def f10_prelogin(t: Trace) -> None:
    for aid in ("prelogin-csc", "prelogin-ping"):
        r = t.response(aid)
        assert (r.name, r["Message"]) == ("Error", "Permission denied")


def f10(t: Trace) -> None:
    expected = {
        "foobarnosuchaction-2": "Invalid/unknown command: FooBarNoSuchAction. "
        "Use Action: ListCommands to show available commands.",
        "originate-3": "Channel not specified",
        "originate-4": "Originate with 'Exten' requires 'Context' and 'Priority'",
        "hangup-5": "No channel specified",
        "getvar-6": "No variable specified",
        "redirect-7": "Channel does not exist: Local/nosuch-00000000;1",
        "hangup-8": "No such channel",
        "queuepause-9": "Interface not found",
        "no-action-header": "Missing action in request",
    }
    for aid, text in expected.items():
        r = t.response(aid)
        assert (r.name, r["Message"]) == ("Error", text)


def f11(t: Trace) -> None:
    assert t.response("orig-11")["Message"] == "Originate successfully queued"
    [orig] = t.events("OriginateResponse")
    assert orig.action_id == "orig-11"
    assert (orig["Response"], orig["Reason"], orig["Uniqueid"]) == (
        "Success",
        "4",
        "dialer-11-0001-a",
    )
    news = t.events("Newchannel")
    by_uid = {m["Uniqueid"]: m for m in news}
    assert by_uid["dialer-11-0001-a"]["Channel"].endswith(";1")
    assert by_uid["dialer-11-0001-b"]["Channel"].endswith(";2")
    assert {m["Linkedid"] for m in news} == {"dialer-11-0001-a"}
    varsets = {m["Variable"]: m["Value"] for m in t.events("VarSet")}
    assert varsets["CAMPAIGN"] == "spring" and varsets["LEADID"] == "4711"
    assert all(
        "Timestamp" in m
        for m in t.messages
        if m.kind == "event" and m.action_id is None and not m.is_event("FullyBooted")
    )


def _pjsip(reason: str, dial: str | None, cause: str, answered: bool) -> Callable[[Trace], None]:
    def check(t: Trace) -> None:
        [orig] = t.events("OriginateResponse")
        assert orig["Reason"] == reason
        assert orig["Uniqueid"].startswith("dialer-")
        assert orig["Response"] == ("Success" if answered else "Failure")
        if not answered:
            assert orig["Channel"] == "PJSIP/5551234@carrier"
        ends = t.events("DialEnd")
        if dial is None:
            assert not ends
        else:
            assert [e["DialStatus"] for e in ends] == [dial]
            assert all("Channel" not in e and "DestChannel" in e for e in t.events("DialBegin"))
        hangups = t.events("Hangup")
        assert hangups and hangups[-1]["Cause"] == cause

    return check


def _local(reason: str, dial: str | None, cause2: str) -> Callable[[Trace], None]:
    def check(t: Trace) -> None:
        [orig] = t.events("OriginateResponse")
        assert orig["Reason"] == reason and orig["Response"] == "Failure"
        assert [e["DialStatus"] for e in t.events("DialEnd")] == ([dial] if dial else [])
        causes = {h["Channel"][-2:]: h["Cause"] for h in t.events("Hangup")}
        assert causes[";2"] == cause2
        assert causes[";1"] == ("19" if reason == "3" else "0")

    return check


def f17(t: Trace) -> None:
    for aid in ("bad-tech-sync", "bad-endpoint-sync", "bad-local-sync"):
        assert t.response(aid)["Message"] == "Originate failed"
    origs = {m.action_id: m for m in t.events("OriginateResponse")}
    for aid, chan in (
        ("bad-tech-async", "FOO/bar"),
        ("bad-endpoint-async", "PJSIP/nosuchendpoint"),
    ):
        assert t.response(aid)["Message"] == "Originate successfully queued"
        o = origs[aid]
        assert (o["Response"], o["Reason"], o["Channel"], o["Uniqueid"]) == (
            "Failure",
            "0",
            chan,
            "<unknown>",
        )
    local = [m for m in t.events("Newchannel") if "nosuchcontext" in m["Channel"]]
    assert len(local) == 2
    assert [h["Cause"] for h in t.events("Hangup")] == ["0", "0"]


def _handoff_bridge(t: Trace) -> None:
    amd = [m for m in t.events("VarSet") if m["Variable"] == "AMDSTATUS"]
    assert amd and amd[0]["Value"] == "HUMAN"
    cause = [m for m in t.events("VarSet") if m["Variable"] == "AMDCAUSE"]
    assert cause[0]["Value"] == "HUMAN-803-800"
    enters = t.events("BridgeEnter")
    assert enters[0]["Channel"].startswith("PJSIP/agent001")  # agent first
    assert enters[1]["Channel"].startswith("Local/7001@lab-carrier")
    agent_uids = {
        m["Uniqueid"]
        for m in t.messages
        if m.kind == "event" and (m.get("Channel") or "").startswith("PJSIP/agent001")
    }
    assert len(agent_uids) == 1  # no rename/masquerade into the bridge


def f18(t: Trace) -> None:
    _handoff_bridge(t)
    assert any(m["UserEvent"] == "AgentWrapup" for m in t.events("UserEvent"))
    assert len(t.events("BridgeDestroy")) >= 1


def f19(t: Trace) -> None:
    r = t.response("bridge-cust-amibridge-main00-29158")
    assert r["Message"] == "Channels have been bridged"
    assert t.messages.index(r) < t.messages.index(t.events("BridgeCreate")[0])
    newexten = [m for m in t.events("Newexten") if m["Context"] == "agent-hold"]
    assert any(m["Priority"] == "3" for m in newexten)  # continues after the interrupted Wait


def f20(t: Trace) -> None:
    assert t.response("redirect-cust-conf-main00-86293")["Message"] == "Redirect successful"
    joins = t.events("ConfbridgeJoin")
    assert joins[0]["Channel"].startswith("PJSIP/agent001")
    assert joins[1]["Channel"].startswith("Local/7001@lab-carrier")
    assert {j["Conference"] for j in joins} == {"agent001"}
    assert t.events("ConfbridgeStart") and t.events("ConfbridgeEnd")
    leaves = t.events("ConfbridgeLeave")
    assert leaves[0]["Channel"].startswith("Local/7001")


def _latency(kind: str) -> Callable[[Trace], None]:
    def check(t: Trace) -> None:
        origs = [m for m in t.events("OriginateResponse") if m["Reason"] == "4"]
        assert len(origs) >= 11  # the agent + 10 customers
        if kind == "bridge":
            assert len([e for e in t.events("BridgeEnter")]) >= 20
        else:
            assert len(t.events("ConfbridgeJoin")) >= 11
        stamps = [
            float(m["Timestamp"]) for m in t.messages if "Timestamp" in m and m.kind == "event"
        ]
        # Events are raised by several Asterisk threads: Timestamp order is only roughly the
        # wire order (20-latency has a 2 us inversion), never by more than a few ms.
        assert all(b - a > -0.005 for a, b in itertools.pairwise(stamps))

    return check


def _amd(status: str, cause: str) -> Callable[[Trace], None]:
    def check(t: Trace) -> None:
        values = {
            m["Variable"]: m["Value"]
            for m in t.events("VarSet")
            if m["Variable"] in ("AMDSTATUS", "AMDCAUSE")
        }
        assert values == {"AMDSTATUS": status, "AMDCAUSE": cause}

    return check


def f22(t: Trace) -> None:
    labvar = [m for m in t.events("VarSet") if m["Variable"] == "LABVAR"]
    assert labvar and labvar[0]["Value"] == "hello world"
    assert any(m["Variable"] == "AGISTATUS" for m in t.events("VarSet"))


def f23(t: Trace) -> None:
    r = t.response("mixmonitor-2")
    assert r.name == "Success" and [k for k, _ in r.headers] == ["Response", "ActionID"]
    assert t.events("MixMonitorStart") and t.events("MixMonitorStop")
    bad = t.response("stopmixmonitor-4")
    assert (bad.name, bad["Message"]) == ("Error", "Could not stop monitoring channel")


def f24(t: Trace) -> None:
    [start] = t.events("ChanSpyStart")
    assert start["SpyerUniqueid"] == "spy-sup" and start["SpyeeUniqueid"] == "spy-agent"
    assert start["SpyerChannel"].startswith("Local/6901@lab-agent")
    assert start["SpyeeChannel"].startswith("PJSIP/agent001")
    assert t.events("ChanSpyStop")
    assert not [e for e in t.events("BridgeEnter") if e["Channel"].startswith("Local/6901")]


def f25(t: Trace) -> None:
    names = [
        "QueueMemberAdded",
        "QueueMemberPause",
        "QueueCallerJoin",
        "AgentCalled",
        "QueueCallerLeave",
        "AgentConnect",
        "AgentComplete",
        "QueueMemberRemoved",
    ]
    for name in names:
        assert t.events(name), name
    pause = t.events("QueueMemberPause")[0]
    assert (pause["Paused"], pause["PausedReason"]) == ("1", "lunch")
    assert t.events("AgentComplete")[0]["Reason"] == "agent"
    assert t.response("queueadd-3")["Message"] == "Unable to add interface: Already there"
    assert t.response("queueremove-10")["Message"] == "Unable to remove interface: Not there"
    s5 = t.results["queuestatus-5"]
    assert {e.name for e in s5.events} == {"QueueParams", "QueueMember", "QueueEntry"}
    assert {e.name for e in t.results["queuestatus-8"].events} == {"QueueParams", "QueueMember"}
    [summary] = t.results["queuesummary-6"].events
    for key in ("LoggedIn", "Available", "Callers", "HoldTime", "TalkTime", "LongestHoldTime"):
        assert key in summary
    hung = t.results["hangup-12"]
    assert hung.response["Message"] == "Channels hung up will follow"
    assert hung.complete is not None and hung.complete.name == "ChannelsHungupListComplete"
    assert hung.events == () and hung.complete["ListItems"] == "0"


def f26(t: Trace) -> None:
    ends = t.events("DTMFEnd")
    assert [e["Digit"] for e in ends] == ["1", "2", "3"]
    begins = t.events("DTMFBegin")
    assert [b["Digit"] for b in begins] == ["1", "2"]  # SIP INFO gives only a DTMFEnd
    assert [e["DurationMs"] for e in ends] == ["280", "280", "250"]
    assert all(e["Direction"] == "Received" for e in ends)
    assert any(m["Cause"] == "32" for m in t.events("SoftHangupRequest"))


def f27(t: Trace) -> None:
    [shut] = t.events("Shutdown")
    assert (shut["Privilege"], shut["Shutdown"], shut["Restart"]) == (
        "system,all",
        "Cleanly",
        "False",
    )
    assert t.messages[-1] == shut


def f27_reconnect(t: Trace) -> None:
    booted = t.events("FullyBooted")
    assert booted and booted[0]["Uptime"] == "2"
    assert t.response("ping-2")["Ping"] == "Pong"


def f28(t: Trace) -> None:
    exts = [m["Extension"] for m in t.events("Newexten") if m["Context"] == "agent-loop"]
    assert "*1" in exts and "*2" in exts
    _handoff_bridge(t)
    got = {
        m["Variable"]: m["Value"] for m in t.messages if m.kind == "response" and "Variable" in m
    }
    assert got == {"AGENT_STATE": "READY", "DISPOSITION": "3"}


def f29(t: Trace) -> None:
    ctxs = [m["Context"] for m in t.events("Newexten")]
    assert "agent-pause" in ctxs and "agent-unpause" in ctxs
    agent_leaves = [
        m for m in t.events("ConfbridgeLeave") if m["Channel"].startswith("PJSIP/agent")
    ]
    assert len(agent_leaves) == 1  # only at *8, not for the menu's dialplan_exec
    assert t.events("ConfbridgeEnd")
    assert any(
        m["Variable"] == "CONFBRIDGE_RESULT" and m["Value"] == "DTMF" for m in t.events("VarSet")
    )


def f30(t: Trace) -> None:
    digits = [e["Digit"] for e in t.events("DTMFEnd") if e["Channel"].startswith("PJSIP/agent")]
    assert digits[:2] == ["*", "0"]
    assert len(t.events("BridgeLeave")) >= 2 and t.events("BridgeDestroy")
    agent_hangups = [h for h in t.events("Hangup") if h["Channel"].startswith("PJSIP/agent")]
    first_leave = t.messages.index(t.events("BridgeLeave")[0])
    assert all(t.messages.index(h) > first_leave + 5 for h in agent_hangups)
    assert any(m.get("Value") == "H" for m in t.messages if m.kind == "response")


def f31(t: Trace) -> None:
    assert not t.events("BridgeCreate") and not t.events("BridgeEnter")
    assert any(
        m["Variable"] == "BRIDGERESULT" and m["Value"] == "NONEXISTENT" for m in t.events("VarSet")
    )


def f32(t: Trace) -> None:
    status = [m for m in t.events("VarSet") if m["Variable"] == "AGISTATUS"]
    assert status and status[0]["Value"] == "FAILURE"
    assert any(m["UserEvent"] == "DialerAbandon" for m in t.events("UserEvent"))
    assert any(h["Cause"] == "16" for h in t.events("Hangup"))


def f33(t: Trace) -> None:
    values = [m["Value"] for m in t.events("VarSet") if m["Variable"] == "AMDSTATUS"]
    causes = [m["Value"] for m in t.events("VarSet") if m["Variable"] == "AMDCAUSE"]
    assert values == ["NOTSURE"] * 3
    assert causes == ["TOOLONG-4900", "TOOLONG-5000", "TOOLONG-5000"]


def f34(t: Trace) -> None:
    login = [m for m in t.events("Newchannel") if m["Exten"] == "9000"]
    assert login and login[0]["Context"] == "lab-agent"
    assert "." in login[0]["Uniqueid"]  # a normal Uniqueid: no ChannelId for inbound
    exts = [m["Extension"] for m in t.events("Newexten") if m["Context"] == "agent-loop"]
    assert "*1" in exts and "*2" in exts


FACTS: dict[str, Callable[[Trace], None]] = {
    "01-login-plain-success": f01,
    "02-login-wrong-secret": f02,
    "03-login-md5-challenge": f03,
    "03-login-md5-challenge-wrongkey": f03_wrongkey,
    "04-login-events-off-then-eventmask": f04,
    "05-ping": f05,
    "06-command-core-show-channels": f06,
    "07-coreshowchannels-live": f07,
    "08-status-all-and-one": f08,
    "09-getvar-setvar": f09,
    "10-errors-unknown-and-missing-headers-prelogin": f10_prelogin,
    "10-errors-unknown-and-missing-headers": f10,
    "11-originate-async-channelid-agi": f11,
    "12-originate-pjsip-answer": _pjsip("4", "ANSWER", "0", True),
    "13-originate-pjsip-busy-486": _pjsip("0", "BUSY", "17", False),
    "14-originate-pjsip-noanswer-timeout": _pjsip("3", None, "19", False),
    "14b-originate-pjsip-480": _pjsip("0", "NOANSWER", "19", False),
    "15-originate-pjsip-503": _pjsip("0", "CONGESTION", "34", False),
    "16-originate-pjsip-404": _pjsip("0", "NOANSWER", "1", False),
    "13L-originate-local-busy": _local("5", "BUSY", "17"),
    "14L-originate-local-noanswer-timeout": _local("3", None, "19"),
    "15L-originate-local-congestion": _local("8", "CONGESTION", "34"),
    "17-originate-bad-channel": f17,
    "18-handoff-agi-exec-bridge": f18,
    "18-latency-agi": _latency("bridge"),
    "19-handoff-ami-bridge-action": f19,
    "19-latency-ami-bridge": _latency("bridge"),
    "20-handoff-confbridge-redirect": f20,
    "20-latency-confbridge": _latency("conf"),
    "21-amd-human": _amd("HUMAN", "HUMAN-803-800"),
    "21-amd-machine": _amd("MACHINE", "LONGGREETING-1500-1500"),
    "21-amd-congrats": _amd("MACHINE", "LONGGREETING-1500-1500"),
    "22-fastagi-edge-cases": f22,
    "23-mixmonitor-ami": f23,
    "24-chanspy-whisper": f24,
    "25-queue": f25,
    "26-inbound-sip-fastagi-ivr-dtmf": f26,
    "27-shutdown-and-reconnect": f27,
    "27-shutdown-and-reconnect-reconnect": f27_reconnect,
    "28-hold-loop-dtmf-bridge-wrapup": f28,
    "28-latency-hold-loop": _latency("bridge"),
    "29-confbridge-agent-dtmf-menu": f29,
    "30-agent-ends-customer-dtmf-disconnect": f30,
    "31-exec-bridge-agent-gone": f31,
    "32-fastagi-server-down": f32,
    "33-amd-notsure": f33,
    "34-softphone-dialin-login": f34,
}


def test_every_trace_has_its_facts_checked() -> None:
    assert {p.stem for p in AMI_TRACES} == set(FACTS)


def test_trace_facts(trace: Trace) -> None:
    FACTS[trace.path.stem](trace)
