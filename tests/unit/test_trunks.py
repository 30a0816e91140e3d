"""Trunks: dial strings from templates and prefix rules; channel and calls-per-second limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dialer.config import TrunkSettings
from dialer.engine.store import disposition_defs
from dialer.engine.trunks import (
    InboundChannel,
    InboundTrunkCalls,
    TrunkGate,
    dial_string,
    inbound_channel,
    trunk_of_channel,
)
from dialer.protocol.ami import Message


def test_dial_string_templates_and_prefix_rules() -> None:
    pjsip = TrunkSettings(dial_template="PJSIP/{number}@carrier")
    assert dial_string(pjsip, "+919876543210") == "PJSIP/919876543210@carrier"
    national = TrunkSettings(
        dial_template="PJSIP/{number}@carrier", strip_prefix="91", add_prefix="0"
    )
    assert dial_string(national, "+919876543210") == "PJSIP/09876543210@carrier"
    assert dial_string(national, "5551234") == "PJSIP/05551234@carrier"  # nothing to strip
    local = TrunkSettings(dial_template="Local/{number}@sim-carrier")
    assert dial_string(local, "7001") == "Local/7001@sim-carrier"


def test_gate_limits_channels_and_calls_per_second() -> None:
    gate = TrunkGate(TrunkSettings(max_channels=5, max_cps=2))
    assert gate.room(0.0) == 2
    gate.start(0.0)
    gate.start(0.1)
    assert gate.room(0.5) == 0  # two this second already
    assert gate.room(1.2) == 2  # a new second
    gate.start(1.2)
    gate.start(1.3)
    gate.start(2.5)
    assert gate.in_use == 5 and gate.room(5.0) == 0  # every channel busy
    gate.end()
    assert gate.room(5.0) == 1


@given(st.lists(st.tuples(st.floats(0, 0.5), st.booleans()), max_size=60))
def test_gate_never_exceeds_its_limits(steps: list[tuple[float, bool]]) -> None:
    gate = TrunkGate(TrunkSettings(max_channels=7, max_cps=3))
    now = 0.0
    starts: list[float] = []
    for gap, end in steps:
        now += gap
        if end and gate.in_use:
            gate.end()
        for _ in range(gate.room(now)):
            gate.start(now)
            starts.append(now)
        assert gate.in_use <= 7
        assert sum(1 for t in starts if t > now - 1.0) <= 3


def test_disposition_definitions_from_campaign_json() -> None:
    defs = disposition_defs(
        [
            {"code": "1", "label": "Reached", "final": True},
            {"code": "2", "label": "Call back", "callback": True},
            {"code": "3", "callback_minutes": 15},
            {"code": "4", "label": "Do not call", "dnc": True, "final": True},
        ]
    )
    by = {d.code: d for d in defs}
    assert by["1"].final and by["1"].callback_minutes is None
    assert by["2"].callback_minutes == 60.0 and by["3"].callback_minutes == 15.0
    assert by["4"].dnc
    assert disposition_defs([]) == disposition_defs(())  # the defaults


# --------------------------------------------------------------------------- shared with inbound


def test_inbound_calls_hold_channels_and_count_in_the_rate_window() -> None:
    gate = TrunkGate(TrunkSettings(max_channels=3, max_cps=2))
    gate.arrive(0.0)
    assert gate.room(0.5) == 1  # one channel taken, one start this second
    gate.arrive(0.6)
    assert gate.room(0.7) == 0  # the rate: two arrivals this second, outbound backs off
    assert gate.room(1.7) == 1  # a new second: the rate frees up, the channels stay taken
    gate.arrive(1.8)
    gate.arrive(1.9)  # never refused: the carrier sent it; the trunk is now over its limit
    assert (gate.in_use, gate.inbound) == (4, 4) and gate.room(10.0) == 0
    gate.leave()
    gate.leave()
    assert (gate.in_use, gate.inbound) == (2, 2) and gate.room(10.0) == 1
    gate.arrive(None)  # adopted from a listing: a channel, no start
    assert gate.room(10.0) == 0 and not gate.starts


def test_trunk_of_channel_by_endpoint_name_or_dial_template() -> None:
    carrier = TrunkSettings(name="carrier", dial_template="PJSIP/{number}@carrier")
    backup = TrunkSettings(name="backup", dial_template="PJSIP/{number}@bk-sip")
    trunks = (carrier, backup)
    assert trunk_of_channel("PJSIP/carrier-00000015", trunks) is carrier
    assert trunk_of_channel("PJSIP/backup-0000000a", trunks) is backup
    assert trunk_of_channel("PJSIP/bk-sip-0000000a", trunks) is backup  # the template's endpoint
    assert trunk_of_channel("PJSIP/seat001-00000001", trunks) is None
    assert trunk_of_channel("garbage", trunks) is None


def _event(**headers: str) -> Message:
    return Message.build([("Event", "Newchannel"), *headers.items()])


def test_inbound_channel_from_newchannel_trace_26_not_an_originate_trace_12() -> None:
    trunks = (TrunkSettings(name="carrier"),)
    # [26] an INVITE from the carrier: Ring, in the trunk endpoint's context, a DID as Exten.
    inbound = _event(
        Channel="PJSIP/carrier-00000015",
        ChannelState="4",
        Context="dialer-inbound",
        Exten="5551000",
        Uniqueid="1795908192.193",
    )
    assert inbound_channel(inbound, trunks) == InboundChannel(
        "1795908192.193", "PJSIP/carrier-00000015", "carrier"
    )
    # [12] our Originate through the trunk: the same context, but Down (and our call id).
    ours = _event(
        Channel="PJSIP/carrier-00000001",
        ChannelState="0",
        Context="dialer-inbound",
        Exten="s",
        Uniqueid="dialer-12-0001",
    )
    assert inbound_channel(ours, trunks) is None
    seat = _event(Channel="PJSIP/seat001-00000002", ChannelState="4", Context="dialer-seat")
    assert inbound_channel(seat, trunks) is None
    elsewhere = _event(
        Channel="PJSIP/other-00000003", ChannelState="4", Context="dialer-inbound", Uniqueid="u"
    )
    assert inbound_channel(elsewhere, trunks) is None  # on no trunk we know: not counted


def test_inbound_calls_released_exactly_once() -> None:
    gate = TrunkGate(TrunkSettings(name="carrier", max_channels=5))
    book = InboundTrunkCalls({"carrier": gate})
    a = InboundChannel("u1", "PJSIP/carrier-1", "carrier")
    b = InboundChannel("u2", "PJSIP/carrier-2", "carrier")
    assert book.arrived(a, 0.0) and book.arrived(b, 0.1)
    assert not book.arrived(a, 0.2)  # the same channel twice (a listing after the event)
    assert gate.in_use == 2
    assert book.ended("u1") and not book.ended("u1")  # Hangup seen twice: released once
    assert not book.ended("someone-else")
    assert gate.in_use == 1
    # The link dropped: u2 hung up unseen, u3 arrived unseen; the listing settles both.
    c = InboundChannel("u3", "PJSIP/carrier-3", "carrier")
    assert book.reconcile({"u3", "x"}, [c], asked=1.0, now=1.1) == 1
    assert set(book.held) == {"u3"} and (gate.in_use, gate.inbound) == (1, 1)
    assert not gate.starts or max(gate.starts) <= 0.1  # adopted: no start counted
    assert not book.ended("u2")  # its late Hangup changes nothing
    assert book.reconcile({"u3"}, [c], asked=2.0, now=2.1) == 0 and gate.in_use == 1
    # A call that arrived after the listing was asked for is spared, even though not in it.
    assert book.arrived(InboundChannel("u4", "PJSIP/carrier-4", "carrier"), 3.5)
    assert book.reconcile({"u3"}, [c], asked=3.0, now=3.6) == 0 and set(book.held) == {"u3", "u4"}
    assert book.reconcile({"u3"}, [c], asked=4.0, now=4.1) == 1 and set(book.held) == {"u3"}
    assert not book.arrived(InboundChannel("u9", "PJSIP/x-1", "x"), 0.0)  # no such gate


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from("aelr")), max_size=80))
def test_inbound_book_matches_a_model(steps: list[tuple[int, str]]) -> None:
    gate = TrunkGate(TrunkSettings(name="carrier", max_channels=4))
    book = InboundTrunkCalls({"carrier": gate})
    up: set[int] = set()
    outbound = 0
    for n, op in steps:
        call = InboundChannel(f"u{n}", f"PJSIP/carrier-{n}", "carrier")
        if op == "a":
            book.arrived(call, float(n))
            up.add(n)
        elif op == "e":
            book.ended(call.uniqueid)
            up.discard(n)
        elif op == "l":  # an outbound launch when there is room
            if gate.room(1e9):
                gate.start(1e9)
                outbound += 1
        else:  # a listing in which only the even-numbered calls are left
            up = {k for k in up if k % 2 == 0}
            book.reconcile({f"u{k}" for k in up}, [], asked=1e9, now=1e9)
        assert gate.inbound == len(up)
        assert gate.in_use == len(up) + outbound
