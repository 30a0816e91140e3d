"""The IVR handler on a real FastAGI server on loopback, driven by a scripted fake Asterisk."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from dialer.agi.server import AgiRouter, AgiServer
from dialer.agi_scripts import ivr as ivr_script
from dialer.agi_scripts.inbound_desk import InboundDesk
from dialer.agi_scripts.ivr import IvrHandler, MemoryRecorder, load_flows
from dialer.config import AgiSettings, InboundSettings
from dialer.domain import ivr
from dialer.domain.inbound_queue import InboundQueue
from tests.integration.fake_asterisk_ivr import FakeCaller

OPEN = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)  # Monday 11:30 in Kolkata
SUNDAY = dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC)


@dataclass
class Rig:
    server: AgiServer
    desk: InboundDesk
    recorder: MemoryRecorder
    handler: IvrHandler

    async def call(self, caller: FakeCaller, timeout: float = 10.0) -> ivr_script.InboundCallEnded:  # noqa: ASYNC109
        """Run one call to its end; return its ledger record."""
        before = len(self.recorder.calls)
        async with asyncio.timeout(timeout):
            await caller.run(self.server.port)
        assert len(self.recorder.calls) == before + 1, "exactly one ledger record per call"
        return self.recorder.calls[-1]


async def make_rig(
    flows: ivr.FlowSet | None = None, when: dt.datetime = OPEN, **inbound: Any
) -> Rig:
    settings = InboundSettings(
        **{"max_wait_seconds": 5.0, "position_announce_seconds": 2.0, **inbound}
    )
    desk = InboundDesk(InboundQueue(service_level_seconds=20.0, skill_relax_seconds=None))
    recorder = MemoryRecorder()
    handler = IvrHandler(
        flows or load_flows(None), desk, recorder, settings, wall_clock=lambda: when
    )
    router = AgiRouter()
    router.add(ivr_script.ROUTE, handler)
    server = AgiServer(AgiSettings(port=0, command_timeout=5.0), router)
    await server.start()
    return Rig(server, desk, recorder, handler)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig()
    yield r
    await r.server.close()


def data_flow(text: str) -> ivr.FlowSet:
    return ivr.parse_flow_text(text, "toml", "test.toml")


async def test_survey_walk_saves_answers_and_closes_the_socket(rig: Rig) -> None:
    caller = FakeCaller(keys=["2", "2", "042", "1", "7"])
    rec = await rig.call(caller)
    assert rec.result == "completed" and rec.label == "completed"
    assert rec.did == "5551000" and rec.caller == "+919812345678"
    assert rec.language == "en"
    assert rec.answers == {"booth": "042", "attended_meeting": "yes", "active_volunteers": "7"}
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
    assert "SET VARIABLE CHANNEL(language) en" in caller.commands
    assert "SET VARIABLE IVR_RESULT completed" in caller.commands
    # text prompts without TTS are silent: GET DATA still needs a file
    assert "GET DATA silence/1 6000 1" in caller.commands
    assert caller.commands[-2:] == ['STREAM FILE vm-goodbye ""', "HANGUP"]
    assert caller.closed.is_set()


async def test_invalid_input_and_timeouts_lead_to_defined_nodes(rig: Rig) -> None:
    # menu: 7 (invalid), nothing, nothing -> on_failure = queue; no agent logged in -> the
    # queue's on_timeout menu; silence there -> callback for the caller's number.
    caller = FakeCaller(keys=["2", "7", "", ""])
    rec = await rig.call(caller)
    assert rec.path == (
        "language",
        "welcome",
        "menu",
        "queue",
        "queue-offer",
        "callback",
        "callback-done",
    )
    assert rec.result == "completed" and rec.label == "callback" and rec.callbacks == 1
    assert "STREAM FILE invalid 0123456789*#" in caller.commands
    [cb] = rig.recorder.callbacks
    assert cb.number == "+919812345678" and cb.language == "en" and cb.due_at == OPEN
    assert cb.did == "5551000"


async def test_hangup_in_the_middle_of_get_data(rig: Rig) -> None:
    caller = FakeCaller(keys=["1", "HANGUP"])
    rec = await rig.call(caller)
    assert rec.result == "caller_hung_up" and rec.last_node == "menu"
    assert rec.language == "hi"
    assert caller.closed.is_set()
    # nothing is sent after the hang-up except what works on a dead channel
    after = caller.commands[caller.commands.index("GET DATA silence/1 6000 1") + 1 :]
    assert all(not c.startswith(("STREAM", "GET DATA")) for c in after)


async def test_hangup_in_the_middle_of_a_prompt(rig: Rig) -> None:
    caller = FakeCaller(keys=["2", "7", "HANGUP-PROMPT"])
    rec = await rig.call(caller)
    assert rec.result == "caller_hung_up" and rec.last_node == "menu"
    after = caller.commands[caller.commands.index("STREAM FILE invalid 0123456789*#") + 1 :]
    assert all(not c.startswith(("STREAM", "GET DATA")) for c in after), after


async def test_a_digit_interrupts_a_menu_prompt() -> None:
    flows = data_flow("""
languages = ["en"]
[prompts.en]
intro = "intro-file"
menu = "menu-file"
[dids.default]
flow = "f"
[flows.f]
start = "m"
[flows.f.nodes.m]
type = "menu"
prompt = ["intro", "menu"]
choices = { "1" = "bye" }
on_failure = "bye"
[flows.f.nodes.bye]
type = "hangup"
result = "pressed"
""")
    rig = await make_rig(flows)
    try:
        caller = FakeCaller(did="999", keys=["!1"])
        rec = await rig.call(caller)
        assert rec.label == "pressed" and rec.path == ("m", "bye")
        assert caller.count("GET DATA") == 0
        assert "STREAM FILE intro-file 0123456789*#" in caller.commands
    finally:
        await rig.server.close()


async def test_queue_hands_the_caller_to_a_ready_agent(rig: Rig) -> None:
    rig.desk.agent_ready("a1", "PJSIP/seat001-00000007", frozenset({"en"}))
    caller = FakeCaller(keys=["2", "0"])
    rec = await rig.call(caller)
    assert rec.result == "answered" and rec.agent == "a1"
    assert "EXEC Bridge PJSIP/seat001-00000007,hF(dialer-agent-wrapup^s^1)" in caller.commands
    assert "GET VARIABLE BRIDGERESULT" in caller.commands
    f = rig.desk.figures()
    assert (f.offered, f.answered, f.waiting) == (1, 1, 0)


async def test_agent_arrives_while_the_caller_waits_and_a_vanished_agent_is_skipped(
    rig: Rig,
) -> None:
    caller = FakeCaller(keys=["2", "0"], bridge_results=["NONEXISTENT", "SUCCESS"])
    rig.desk.agent_ready("hindi-only", "PJSIP/seat009-00000001", frozenset({"hi"}))
    rig.desk.agent_ready("busy-en", "PJSIP/seat010-00000001", frozenset({"en"}))
    rig.desk.agent_busy("busy-en")  # logged in, so the caller waits rather than "no agents"
    task = asyncio.ensure_future(rig.call(caller))
    await caller.wait_for("EXEC StartMusicOnHold default")
    assert rig.desk.queue.position(caller.uniqueid) == 1  # the Hindi agent cannot take her
    rig.desk.agent_ready("gone", "PJSIP/seat002-00000003", frozenset({"en"}))
    await caller.wait_for("EXEC Bridge PJSIP/seat002")
    await caller.wait_for("EXEC StartMusicOnHold", timeout=5)  # back in line with music
    rig.desk.agent_ready("a3", "PJSIP/seat003-00000004", frozenset({"en"}))
    rec = await task
    assert rec.result == "answered" and rec.agent == "a3"
    assert caller.count("EXEC StartMusicOnHold") == 2
    assert caller.count("EXEC StopMusicOnHold") == 2
    f = rig.desk.figures()
    assert (f.offered, f.answered, f.abandoned, f.left) == (1, 1, 0, 0)


async def test_long_wait_hears_position_then_timeout_offer_then_voicemail() -> None:
    rig = await make_rig(max_wait_seconds=0.6, position_announce_seconds=0.25)
    try:
        rig.desk.agent_ready("busy", "PJSIP/seat009-1", frozenset({"en"}))
        rig.desk.agent_busy("busy")
        caller = FakeCaller(keys=["2", "0", "2"])
        rec = await rig.call(caller)
        assert rec.path[-3:] == ("queue-offer", "message", "message-saved")
        assert rec.label == "voicemail"
        assert rec.recordings == ("dialer-messages/1795908192.193-1.wav",)
        assert "EXEC SayNumber 1" in caller.commands
        assert 'STREAM FILE queue-thereare ""' in caller.commands
        assert "EXEC Record dialer-messages/1795908192.193-1.wav,5,120,k" in caller.commands
        f = rig.desk.figures()
        assert (f.offered, f.answered, f.left, f.waiting) == (1, 0, 1, 0)
    finally:
        await rig.server.close()


async def test_hangup_while_waiting_in_the_queue_is_an_abandon(rig: Rig) -> None:
    rig.desk.agent_ready("busy", "PJSIP/seat009-1", frozenset({"en"}))
    rig.desk.agent_busy("busy")
    caller = FakeCaller(keys=["2", "0"])
    task = asyncio.ensure_future(rig.call(caller))
    await caller.wait_for("EXEC StartMusicOnHold")
    caller.hang_up_now()
    rec = await task
    assert rec.result == "abandoned_in_queue" and rec.last_node == "queue"
    f = rig.desk.figures()
    assert (f.offered, f.abandoned, f.waiting) == (1, 1, 0)


async def test_hangup_while_recording_keeps_the_message(rig: Rig) -> None:
    caller = FakeCaller(keys=["2", "3"], record_status="HANGUP")
    rec = await rig.call(caller)
    assert rec.result == "caller_hung_up"
    assert rec.recordings == ("dialer-messages/1795908192.193-1.wav",)


async def test_closed_hours_route(rig: Rig) -> None:
    closed = await make_rig(when=SUNDAY)
    try:
        caller = FakeCaller(did="12345", keys=["1"])
        rec = await closed.call(caller)
        assert rec.hours_status == "closed"
        assert rec.path[:3] == ("closed", "closed-menu", "callback-tomorrow")
        [cb] = closed.recorder.callbacks
        assert cb.due_at == SUNDAY + dt.timedelta(minutes=720)
    finally:
        await closed.server.close()


async def test_bridge_that_outlasts_the_settle_time_counts_at_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ivr_script, "BRIDGE_SETTLE_SECONDS", 0.0)
    rig.desk.agent_ready("a1", "PJSIP/seat001-1", frozenset({"en"}))
    caller = FakeCaller(keys=["2", "0"], hold_bridge=True)
    answered = asyncio.Event()
    connected = rig.desk.queue.connected

    def spy(call_id: str, now: float) -> Any:
        answered.set()
        return connected(call_id, now)

    monkeypatch.setattr(rig.desk.queue, "connected", spy)
    task = asyncio.ensure_future(rig.call(caller))
    await caller.wait_for("EXEC Bridge")
    # the conversation is still going on and the caller already counts as answered
    await asyncio.wait_for(answered.wait(), 5)
    assert not task.done() and rig.desk.figures().answered == 1
    caller.release_bridge.set()
    rec = await task
    assert rec.result == "answered"


async def test_shutdown_during_the_conversation_keeps_it_answered(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ivr_script, "BRIDGE_SETTLE_SECONDS", 0.0)
    rig.desk.agent_ready("a1", "PJSIP/seat001-1", frozenset({"en"}))
    answered = asyncio.Event()
    connected = rig.desk.queue.connected

    def spy(call_id: str, now: float) -> Any:
        answered.set()
        return connected(call_id, now)

    monkeypatch.setattr(rig.desk.queue, "connected", spy)
    caller = FakeCaller(keys=["2", "0"], hold_bridge=True)
    task = asyncio.ensure_future(caller.run(rig.server.port))
    await asyncio.wait_for(answered.wait(), 5)  # the bridge formed; the conversation goes on
    await rig.server.close()  # the controller stops: the handler is cancelled mid-bridge
    [rec] = rig.recorder.calls
    assert rec.result == "answered" and rec.agent == "a1"
    caller.release_bridge.set()
    await asyncio.wait_for(task, 5)


async def test_unknown_did_without_default_is_recorded_and_hung_up() -> None:
    flows = data_flow("""
languages = ["en"]
[prompts.en]
p = "x"
[dids."5551000"]
flow = "f"
[flows.f]
start = "bye"
[flows.f.nodes.bye]
type = "hangup"
""")
    rig = await make_rig(flows)
    try:
        caller = FakeCaller(did="777")
        rec = await rig.call(caller)
        assert rec.result == "failed" and rec.label == "unknown_did"
        assert caller.commands == ["HANGUP"]
    finally:
        await rig.server.close()
