"""The call state machine: forward only, ends exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.call import CallEvent, CallPhase, CallState, IllegalCallTransition, advance

P = CallPhase
C = CallEvent


def _call() -> CallState:
    return CallState("c1", "camp", 7, "5551001", launched_at=0.0)


def test_happy_path_records_times() -> None:
    c = _call()
    for ev, at in [(C.SENT, 0.1), (C.RING, 0.5), (C.ANSWER, 3.0), (C.LIVE, 5.5), (C.CONNECT, 5.51)]:
        c = advance(c, ev, at)
    assert c.phase is P.CONNECTED
    assert (c.answered_at, c.live_at, c.connected_at) == (3.0, 5.5, 5.51)
    c = advance(c, C.END, 60.0)
    assert c.phase is P.ENDED and c.ended_at == 60.0


def test_retry_after_vanished_agent_keeps_the_first_verdict_time() -> None:
    c = _call()
    for ev, at in [(C.SENT, 0), (C.ANSWER, 1), (C.LIVE, 2), (C.CONNECT, 2.1), (C.LIVE, 2.2)]:
        c = advance(c, ev, at)
    assert c.phase is P.WAITING and c.live_at == 2


@given(st.lists(st.sampled_from(list(CallEvent)), max_size=30))
def test_random_sequences_end_at_most_once_and_never_go_back(events: list[CallEvent]) -> None:
    order = list(CallPhase)
    c = _call()
    ends = 0
    for i, ev in enumerate(events):
        before = c
        try:
            c = advance(c, ev, float(i))
        except IllegalCallTransition:
            assert c is before
            continue
        ends += ev is C.END
        if not (before.phase is P.CONNECTED and ev is C.LIVE):
            assert order.index(c.phase) >= order.index(before.phase) or c.phase is P.ENDED
    assert ends <= 1
    if ends:
        assert c.phase is P.ENDED
        with pytest.raises(IllegalCallTransition):
            advance(c, C.END, 99.0)
