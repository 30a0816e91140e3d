"""Properties of every pacer: an int >= 0, zero without agents, determinism, exact formulas."""

from __future__ import annotations

import copy
import functools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.pacing import (
    CallAbandoned,
    CallAnswered,
    CallConnected,
    CallLaunched,
    CallUnanswered,
    PacingEvent,
    PacingSnapshot,
    PredictivePacer,
    TalkEnded,
    WrapEnded,
    make_pacer,
)

elapsed = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)
small = st.lists(elapsed, max_size=40).map(tuple)


@st.composite
def snapshots(draw: st.DrawFn, ready: st.SearchStrategy[int] | None = None) -> PacingSnapshot:
    """Any campaign state, from empty to busy."""
    return PacingSnapshot(
        now=draw(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
        ready_agents=draw(ready if ready is not None else st.integers(0, 60)),
        talking=draw(small),
        wrapping=draw(small),
        ringing=draw(st.lists(st.floats(0.0, 120.0), max_size=80).map(tuple)),
        waiting=draw(st.lists(st.floats(0.0, 2.0), max_size=5).map(tuple)),
    )


@st.composite
def event_streams(draw: st.DrawFn) -> list[PacingEvent]:
    """A plausible stream of events in time order."""
    at = draw(st.floats(-1e5, 1e5))
    out: list[PacingEvent] = []
    for kind in draw(st.lists(st.integers(0, 6), max_size=120)):
        at += draw(st.floats(0.0, 5.0))
        dur = draw(st.floats(0.0, 900.0))
        out.append(
            [
                CallLaunched(at=at),
                CallAnswered(at=at, ring_seconds=dur / 30, live=draw(st.booleans())),
                CallUnanswered(at=at, ring_seconds=dur / 30, reason="no_answer"),
                CallConnected(at=at, wait_seconds=dur / 450),
                CallAbandoned(at=at, wait_seconds=2.0),
                TalkEnded(at=at, talk_seconds=dur),
                WrapEnded(at=at, wrap_seconds=dur / 10),
            ][kind]
        )
    return out


@functools.cache
def _warmed() -> PredictivePacer:
    pacer = make_pacer("predictive")
    rng = random.Random(5)
    at = 0.0
    for _ in range(400):
        at += 0.8
        pacer.observe(CallLaunched(at=at))
        if rng.random() < 0.4:
            pacer.observe(CallAnswered(at=at, ring_seconds=rng.uniform(2, 15), live=True))
            pacer.observe(TalkEnded(at=at, talk_seconds=rng.expovariate(1 / 120)))
            pacer.observe(WrapEnded(at=at, wrap_seconds=rng.uniform(10, 50)))
        else:
            pacer.observe(CallUnanswered(at=at, ring_seconds=20.0, reason="no_answer"))
    assert isinstance(pacer, PredictivePacer)
    return pacer


def pacers() -> list[object]:
    return [
        make_pacer("progressive"),
        make_pacer("ratio", ratio=2.5),
        make_pacer("predictive"),
        copy.deepcopy(_warmed()),
    ]


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(snap=snapshots())
def test_decide_is_always_an_int_at_least_zero(snap: PacingSnapshot) -> None:
    for pacer in pacers():
        n = pacer.decide(snap)  # type: ignore[attr-defined]
        assert type(n) is int and n >= 0


@FAST
@given(snap=snapshots(ready=st.just(0)))
def test_no_agents_ready_or_soon_ready_means_zero(snap: PacingSnapshot) -> None:
    empty = PacingSnapshot(
        now=snap.now,
        ready_agents=0,
        talking=(),
        wrapping=(),
        ringing=snap.ringing,
        waiting=snap.waiting,
    )
    for pacer in pacers():
        assert pacer.decide(empty) == 0  # type: ignore[attr-defined]


@FAST
@given(events=event_streams(), snaps=st.lists(snapshots(), min_size=1, max_size=4))
def test_same_inputs_same_output(events: list[PacingEvent], snaps: list[PacingSnapshot]) -> None:
    one, two = make_pacer("predictive"), make_pacer("predictive")
    for event in events:
        one.observe(event)
        two.observe(event)
    first = [one.decide(s) for s in snaps]
    assert [two.decide(s) for s in snaps] == first
    assert [one.decide(s) for s in snaps] == first  # deciding changes nothing


@FAST
@given(snap=snapshots())
def test_warm_predictive_is_deterministic_and_never_below_progressive(
    snap: PacingSnapshot,
) -> None:
    a, b = copy.deepcopy(_warmed()), copy.deepcopy(_warmed())
    n = a.decide(snap)
    assert b.decide(snap) == n
    agents = snap.ready_agents + len(snap.talking) + len(snap.wrapping)
    if agents:
        assert n >= max(0, snap.ready_agents - len(snap.ringing) - len(snap.waiting))


@settings(max_examples=200, deadline=None)
@given(snap=snapshots())
def test_progressive_formula_exactly(snap: PacingSnapshot) -> None:
    expected = max(0, snap.ready_agents - len(snap.ringing) - len(snap.waiting))
    assert make_pacer("progressive").decide(snap) == expected


@settings(max_examples=200, deadline=None)
@given(snap=snapshots(), ratio=st.floats(0.1, 5.0))
def test_ratio_formula_exactly(snap: PacingSnapshot, ratio: float) -> None:
    expected = max(0, round(ratio * snap.ready_agents) - len(snap.ringing) - len(snap.waiting))
    assert make_pacer("ratio", ratio=ratio).decide(snap) == expected
