"""The call-result mapping, checked against the recorded Asterisk 22 traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.results import (
    LIVE_RESULTS,
    UNANSWERED_RESULTS,
    CallFacts,
    CallResult,
    cause_leg,
    classify,
    from_hangup_cause,
    pacer_reason,
    parse_result,
    pick_cause,
)
from dialer.protocol.ami import AmiDecoder, Message


@dataclass
class Seen:
    """What a trace says about one call id (Uniqueid / ChannelId)."""

    channel: str = ""
    reason: int | None = None
    dial_status: str | None = None
    causes: dict[str, int] = field(default_factory=dict)  # "self" / "other" -> cause
    amd: str | None = None


def collect(path: Path) -> dict[str, Seen]:
    """Facts per call id, the way the engine will gather them from AMI events."""
    calls: dict[str, Seen] = {}
    for frame in AmiDecoder().feed(path.read_bytes()):
        if not isinstance(frame, Message):
            continue
        uid = frame.get("Uniqueid") or ""
        if frame.name == "OriginateResponse" and uid and uid != "<unknown>":
            seen = calls.setdefault(uid, Seen())
            seen.channel = frame.get("Channel") or ""
            seen.reason = int(frame.get("Reason") or 0)
        elif frame.name == "DialEnd":
            calls.setdefault(frame.get("DestUniqueid") or "", Seen()).dial_status = frame.get(
                "DialStatus"
            )
        elif frame.name == "Hangup" and uid:
            leg, call = ("other", uid[:-2]) if uid.endswith("-2") else ("self", uid)
            calls.setdefault(call, Seen()).causes[leg] = int(frame.get("Cause") or 0)
        elif frame.name == "VarSet" and frame.get("Variable") == "AMDSTATUS":
            calls.setdefault(uid, Seen()).amd = frame.get("Value")
    return calls


def facts_of(seen: Seen, **extra: bool) -> CallFacts:
    cause = pick_cause(seen.causes.get("self"), seen.causes.get("other"), cause_leg(seen.channel))
    return CallFacts(
        answered=seen.reason == 4 or seen.dial_status == "ANSWER",
        originate_reason=seen.reason,
        dial_status=seen.dial_status,
        hangup_cause=cause,
        amd_status=seen.amd,
        **extra,
    )


TRACE_EXPECTATIONS = [
    ("13-originate-pjsip-busy-486", "dialer-13-0001", CallResult.BUSY),
    ("14-originate-pjsip-noanswer-timeout", "dialer-14-0001", CallResult.NO_ANSWER),
    ("14b-originate-pjsip-480", "dialer-14b-0001", CallResult.NO_ANSWER),
    ("15-originate-pjsip-503", "dialer-15-0001", CallResult.CONGESTION),
    ("16-originate-pjsip-404", "dialer-16-0001", CallResult.INVALID_NUMBER),
    ("13L-originate-local-busy", "dialer-13L-0001", CallResult.BUSY),
    ("14L-originate-local-noanswer-timeout", "dialer-14L-0001", CallResult.NO_ANSWER),
    ("15L-originate-local-congestion", "dialer-15L-0001", CallResult.CONGESTION),
    ("21-amd-machine", "amd-machine-1", CallResult.MACHINE),
]


@pytest.mark.parametrize(("trace", "call_id", "expected"), TRACE_EXPECTATIONS)
def test_trace_outcomes(traces_dir: Path, trace: str, call_id: str, expected: CallResult) -> None:
    calls = collect(traces_dir / f"{trace}.ami")
    assert call_id in calls, sorted(calls)
    assert classify(facts_of(calls[call_id])) is expected


def test_local_busy_reads_the_cause_on_the_second_half(traces_dir: Path) -> None:
    seen = collect(traces_dir / "13L-originate-local-busy.ami")["dialer-13L-0001"]
    assert seen.causes == {"self": 0, "other": 17}
    assert cause_leg(seen.channel) == "other"
    assert pick_cause(seen.causes["self"], seen.causes["other"], "other") == 17


def test_amd_notsure_follows_campaign_policy(traces_dir: Path) -> None:
    calls = collect(traces_dir / "33-amd-notsure.ami")
    for call_id in ("amd-33-t1", "amd-33-t2", "amd-33-t3"):
        seen = calls[call_id]
        assert seen.amd == "NOTSURE"
        dropped = CallFacts(answered=True, amd_status=seen.amd, notsure_is_live=False)
        assert classify(dropped) is CallResult.NOT_SURE
        live = CallFacts(answered=True, amd_status=seen.amd, notsure_is_live=True, connected=True)
        assert classify(live) is CallResult.HUMAN


def test_amd_human_connected_or_abandoned(traces_dir: Path) -> None:
    seen = collect(traces_dir / "21-amd-human.ami")
    (call,) = [s for s in seen.values() if s.amd == "HUMAN"]
    assert classify(facts_of(call, connected=True)) is CallResult.HUMAN
    assert classify(facts_of(call, abandoned=True)) is CallResult.ABANDONED


def test_channel_that_never_existed_is_failed(traces_dir: Path) -> None:
    # 17: OriginateResponse Failure, Reason 0, Uniqueid <unknown>, no Hangup at all.
    assert classify(CallFacts(originate_reason=0)) is CallResult.FAILED


def test_hangup_during_amd_and_link_lost() -> None:
    assert classify(CallFacts(answered=True, amd_status="HANGUP")) is CallResult.AMD_HANGUP
    assert classify(CallFacts(link_lost=True)) is CallResult.LINK_LOST
    assert classify(CallFacts(answered=True, link_lost=True)) is CallResult.LINK_LOST


def test_specific_causes_beat_dial_status() -> None:
    assert classify(CallFacts(dial_status="CONGESTION", hangup_cause=21)) is CallResult.REJECTED
    assert classify(CallFacts(dial_status="NOANSWER", hangup_cause=28)) is (
        CallResult.INVALID_NUMBER
    )
    assert classify(CallFacts(dial_status="BUSY", hangup_cause=16)) is CallResult.BUSY
    assert classify(CallFacts(hangup_cause=17)) is CallResult.BUSY


def test_pacer_reasons_and_partition() -> None:
    assert pacer_reason(CallResult.BUSY) == "busy"
    assert pacer_reason(CallResult.INVALID_NUMBER) == "failed"
    assert not LIVE_RESULTS & UNANSWERED_RESULTS
    assert parse_result(" Busy ") is CallResult.BUSY
    with pytest.raises(ValueError, match="valid"):
        parse_result("nope")


@given(
    answered=st.booleans(),
    reason=st.none() | st.integers(0, 9),
    dial=st.none()
    | st.sampled_from(
        ["BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL", "ANSWER", "CANCEL", "weird", ""]
    ),
    cause=st.none() | st.integers(0, 130),
    amd=st.none() | st.sampled_from(["HUMAN", "MACHINE", "NOTSURE", "HANGUP", "junk"]),
    connected=st.booleans(),
    abandoned=st.booleans(),
    link_lost=st.booleans(),
    notsure=st.booleans(),
)
def test_classify_is_total_and_consistent(
    answered: bool,
    reason: int | None,
    dial: str | None,
    cause: int | None,
    amd: str | None,
    connected: bool,
    abandoned: bool,
    link_lost: bool,
    notsure: bool,
) -> None:
    facts = CallFacts(
        answered=answered,
        originate_reason=reason,
        dial_status=dial,
        hangup_cause=cause,
        amd_status=amd,
        connected=connected,
        abandoned=abandoned,
        link_lost=link_lost,
        notsure_is_live=notsure,
    )
    result = classify(facts)
    assert isinstance(result, CallResult)
    if connected:
        assert result is CallResult.HUMAN
    was_answered = answered or reason == 4 or bool(amd) or connected
    if not was_answered and not link_lost and from_hangup_cause(cause, specific_only=True):
        assert result is from_hangup_cause(cause, specific_only=True)
    if result is CallResult.INVALID_NUMBER:
        assert cause in {1, 3, 22, 28}
    if not was_answered:
        assert result not in LIVE_RESULTS
