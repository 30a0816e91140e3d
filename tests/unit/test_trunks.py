"""Trunks: dial strings from templates and prefix rules; channel and calls-per-second limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dialer.config import TrunkSettings
from dialer.engine.store import disposition_defs
from dialer.engine.trunks import TrunkGate, dial_string


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
