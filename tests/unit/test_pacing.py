"""The pacer contract, the fixed formulas, the ledger and the predictive pacer's behaviour."""

from __future__ import annotations

import copy
import dataclasses
import functools
import random

import pytest

from dialer.pacing import (
    AbandonLedger,
    CallAbandoned,
    CallAnswered,
    CallConnected,
    CallLaunched,
    CallUnanswered,
    LedgerBucket,
    PacingSnapshot,
    PredictivePacer,
    TalkEnded,
    WrapEnded,
    make_pacer,
)


def feed_history(pacer: object, calls: int = 600, seed: int = 3, start: float = 500.0) -> float:
    """Feed ``calls`` calls of a core-like population; returns the time of the last event."""
    rng = random.Random(seed)
    at = start
    for _ in range(calls):
        at += 0.7
        pacer.observe(CallLaunched(at=at))  # type: ignore[attr-defined]
        ring = rng.uniform(3.0, 14.0)
        if rng.random() < 0.45:
            live = rng.random() < 0.55
            pacer.observe(CallAnswered(at=at, ring_seconds=ring, live=live))  # type: ignore[attr-defined]
            if live:
                pacer.observe(CallConnected(at=at, wait_seconds=0.0))  # type: ignore[attr-defined]
                pacer.observe(TalkEnded(at=at, talk_seconds=rng.lognormvariate(4.7, 0.8)))  # type: ignore[attr-defined]
                pacer.observe(WrapEnded(at=at, wrap_seconds=rng.uniform(15.0, 45.0)))  # type: ignore[attr-defined]
        else:
            pacer.observe(CallUnanswered(at=at, ring_seconds=20.0, reason="no_answer"))  # type: ignore[attr-defined]
    return at


@functools.cache
def _warmed() -> PredictivePacer:
    pacer = make_pacer("predictive")
    feed_history(pacer)
    assert isinstance(pacer, PredictivePacer)
    return pacer


def warm() -> PredictivePacer:
    """A predictive pacer past its cold start (a private copy: tests may change it)."""
    return copy.deepcopy(_warmed())


# --------------------------------------------------------------------------- the contract


def test_events_are_frozen_slotted_and_built_by_keyword() -> None:
    event = CallAnswered(at=1.0, ring_seconds=7.5, live=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.at = 2.0  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert CallUnanswered(at=1.0, ring_seconds=20.0, reason="busy").reason == "busy"
    assert CallAbandoned(at=3.0, wait_seconds=2.0).wait_seconds == 2.0
    assert TalkEnded(at=1.0, talk_seconds=3.0) == TalkEnded(at=1.0, talk_seconds=3.0)


def test_unanswered_reason_must_be_one_of_four() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        CallUnanswered(at=1.0, ring_seconds=2.0, reason="voicemail")  # type: ignore[arg-type]


def test_snapshot_positional_coerces_lists_and_rejects_negative_ready() -> None:
    snap = PacingSnapshot(5.0, 2, [1, 2], [], [0.5], [])  # type: ignore[arg-type]
    assert snap.talking == (1.0, 2.0) and snap.ringing == (0.5,)
    with pytest.raises(ValueError):
        PacingSnapshot(now=0.0, ready_agents=-1)


def test_make_pacer_modes_and_errors() -> None:
    assert make_pacer("progressive").mode == "progressive"
    assert make_pacer("ratio").mode == "ratio"
    assert make_pacer("predictive", target_abandon_rate=0.03).mode == "predictive"
    with pytest.raises(ValueError, match="unknown pacing mode"):
        make_pacer("aggressive")
    with pytest.raises(TypeError):
        make_pacer("progressive", ratio=2.0)
    with pytest.raises(TypeError):
        make_pacer("predictive", nonsense=1)
    with pytest.raises(ValueError):
        make_pacer("predictive", target_abandon_rate=1.5)
    with pytest.raises(ValueError):
        make_pacer("ratio", ratio=0.0)


def test_ratio_default_is_two() -> None:
    snap = PacingSnapshot(now=0.0, ready_agents=3, ringing=(1.0,))
    assert make_pacer("ratio").decide(snap) == 5
    assert make_pacer(("ratio", 3.0)).decide(snap) == 8


def test_formula_pacers_explain_themselves() -> None:
    pacer = make_pacer("progressive")
    n = pacer.decide(PacingSnapshot(now=9.0, ready_agents=4, ringing=(1.0,), waiting=(0.5,)))
    record = pacer.last_decision
    assert n == 2 and record is not None
    assert (record.launch, record.reason, record.ready, record.ringing) == (2, "formula", 4, 1)


# --------------------------------------------------------------------------- the ledger


def test_ledger_counts_today_and_rolls_windows() -> None:
    history = (
        LedgerBucket(start=0.0, live=100, abandoned=5),  # 30 days + before "now": expires
        LedgerBucket(start=2_000_000.0, live=200, abandoned=2),  # inside 30 days, not 24 h
        LedgerBucket(start=2_600_000.0, live=50, abandoned=1),  # inside 24 h
    )
    ledger = AbandonLedger(history)
    now = 2_650_000.0
    ledger.record(now, live=10)
    ledger.record(now + 1, abandoned=1)
    view = ledger.view()
    assert (view.today.live, view.today.abandoned) == (10, 1)
    assert (view.last_24h.live, view.last_24h.abandoned) == (60, 2)
    assert (view.last_30d.live, view.last_30d.abandoned) == (260, 4)
    assert view.today.rate == pytest.approx(0.1)
    assert view.last_30d.slack(0.03) == pytest.approx(0.03 * 260 - 4)
    assert sum(b.live for b in ledger.buckets()) == 260


def test_pacer_ledger_follows_events_and_carries_over() -> None:
    pacer = make_pacer("predictive")
    pacer.observe(CallAnswered(at=100.0, ring_seconds=5.0, live=True))
    pacer.observe(CallAnswered(at=101.0, ring_seconds=5.0, live=False))
    pacer.observe(CallAnswered(at=102.0, ring_seconds=5.0, live=True))
    pacer.observe(CallAbandoned(at=104.0, wait_seconds=2.0))
    today = pacer.ledger.view().today
    assert (today.live, today.abandoned) == (2, 1)
    tomorrow = make_pacer("predictive", history=pacer.ledger.buckets())
    tomorrow.observe(CallAnswered(at=86_500.0, ring_seconds=5.0, live=True))
    view = tomorrow.ledger.view()
    assert (view.today.live, view.today.abandoned) == (1, 0)
    assert (view.last_24h.live, view.last_24h.abandoned) == (3, 1)


# --------------------------------------------------------------------------- predictive


def test_cold_start_is_progressive() -> None:
    pacer = make_pacer("predictive")
    snap = PacingSnapshot(now=10.0, ready_agents=6, talking=(30.0,) * 10, ringing=(2.0, 3.0))
    assert pacer.decide(snap) == 4
    assert pacer.last_decision is not None and pacer.last_decision.reason == "cold_start"


def test_few_agents_fall_back_to_progressive() -> None:
    pacer = warm()
    snap = PacingSnapshot(now=2000.0, ready_agents=2, wrapping=(28.0, 29.0))
    assert pacer.decide(snap) == 2
    assert pacer.last_decision is not None and pacer.last_decision.reason == "few_agents"


def test_no_agents_soon_means_no_launch() -> None:
    pacer = warm()
    assert pacer.decide(PacingSnapshot(now=2000.0, ready_agents=0)) == 0
    # Everyone has just started a call: nobody is expected free within the horizon.
    assert pacer.decide(PacingSnapshot(now=2000.0, ready_agents=0, talking=(0.0,) * 10)) == 0
    assert pacer.last_decision is not None and pacer.last_decision.reason == "no_agents"


def test_warm_pacer_dials_ahead_for_agents_about_to_free() -> None:
    pacer = warm()
    # 20 agents near the end of wrap-up, none ready: progressive would wait; predictive dials.
    snap = PacingSnapshot(now=2000.0, ready_agents=0, wrapping=(40.0,) * 20, talking=(60.0,) * 15)
    n = pacer.decide(snap)
    record = pacer.last_decision
    assert n > 0 and record is not None and record.reason == "model"
    assert record.estimates is not None and 0.3 < record.estimates.answer_rate < 0.6
    assert record.marginal_abandon <= record.threshold
    assert record.expected_free_agents > 5


def test_more_calls_in_flight_mean_fewer_launches() -> None:
    pacer = warm()
    base = dict(now=2000.0, ready_agents=3, wrapping=(20.0,) * 10, talking=(90.0,) * 22)
    counts = [pacer.decide(PacingSnapshot(**base, ringing=(2.0,) * r)) for r in (0, 5, 10, 20, 40)]  # type: ignore[arg-type]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1]


def test_abandonments_make_the_pacer_spend_less() -> None:
    pacer = warm()
    snap = PacingSnapshot(now=2000.0, ready_agents=2, wrapping=(25.0,) * 12, talking=(80.0,) * 21)
    before, theta_before = pacer.decide(snap), pacer.threshold()
    for i in range(15):
        pacer.observe(CallAbandoned(at=1500.0 + i, wait_seconds=2.0))
    after, theta_after = pacer.decide(snap), pacer.threshold()
    assert theta_after < theta_before
    assert after < before


def test_over_budget_dials_only_progressive_until_the_ledger_recovers() -> None:
    pacer = warm()
    snap = PacingSnapshot(now=2000.0, ready_agents=3, wrapping=(25.0,) * 12, talking=(80.0,) * 21)
    assert pacer.decide(snap) > 3
    live = pacer.ledger.view().today.live
    over = int(0.03 * live) + 2
    for i in range(over):
        pacer.observe(CallAbandoned(at=1500.0 + i, wait_seconds=2.0))
    assert pacer.decide(snap) == 3
    assert pacer.last_decision is not None and pacer.last_decision.reason == "ledger_exhausted"
    at = 1600.0
    while pacer.ledger.view().today.slack(0.03 * 0.95) < 0:  # live answers without drops
        at += 1.0
        pacer.observe(CallAnswered(at=at, ring_seconds=6.0, live=True))
    assert pacer.decide(snap) >= 3
    assert pacer.last_decision is not None and pacer.last_decision.reason != "ledger_exhausted"


def test_calls_already_out_count_against_the_budget() -> None:
    # Realised abandonments leave budget in hand, but the calls already ringing are expected
    # to drop more than that: the budget is spent, so only progressive (safe) calls go out.
    pacer = warm()
    agents = dict(now=2000.0, ready_agents=2, wrapping=(25.0,) * 10, talking=(80.0,) * 20)
    quiet = PacingSnapshot(**agents)  # type: ignore[arg-type]
    busy = PacingSnapshot(**agents, ringing=(3.0,) * 40)  # type: ignore[arg-type]
    assert pacer.decide(busy) == 0 and pacer.last_decision is not None
    committed = pacer.last_decision.expected_abandoned
    assert committed > 1.0 and pacer.last_decision.reason != "ledger_exhausted"
    slack = pacer.ledger.view().today.slack(0.03 * 0.95)
    for i in range(int(slack - committed) + 1):  # leaves 0 <= slack < committed
        pacer.observe(CallAbandoned(at=1500.0 + i, wait_seconds=2.0))
    assert 0.0 <= pacer.ledger.view().today.slack(0.03 * 0.95) < committed
    pacer.decide(busy)
    assert pacer.last_decision is not None and pacer.last_decision.reason == "ledger_exhausted"
    assert pacer.last_decision.expected_abandoned == pytest.approx(committed)
    assert pacer.decide(quiet) > 2  # nothing out: the same ledger still allows the model
    assert pacer.last_decision is not None and pacer.last_decision.reason == "model"


def test_a_sudden_rise_in_answers_is_flagged_unstable() -> None:
    pacer = warm()
    at = 1500.0
    for _ in range(80):
        at += 0.5
        pacer.observe(CallAnswered(at=at, ring_seconds=5.0, live=True))
    snap = PacingSnapshot(now=at, ready_agents=2, wrapping=(25.0,) * 12, talking=(80.0,) * 21)
    pacer.decide(snap)
    record = pacer.last_decision
    assert record is not None and record.estimates is not None
    assert record.estimates.stable is False


def test_explain_has_no_effect() -> None:
    pacer = warm()
    snap = PacingSnapshot(now=2000.0, ready_agents=1, wrapping=(25.0,) * 12, talking=(80.0,) * 21)
    first = pacer.explain(snap)
    assert pacer.explain(snap) == first
    assert pacer.decide(snap) == first.launch


def test_large_snapshots_count_rows_like_small_ones_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the gather limit the per-row count must give the same prediction as gathering."""
    import dialer.pacing.predictive as predictive

    pacer = warm()
    rng = random.Random(5)
    snap = PacingSnapshot(
        now=2000.0,
        ready_agents=30,
        talking=tuple(rng.expovariate(1 / 150.0) * 30 for _ in range(400)),  # some past the grid
        wrapping=tuple(rng.uniform(0.0, 1200.0) for _ in range(200)),
        ringing=tuple(rng.uniform(0.0, 200.0) for _ in range(900)),
        waiting=(1.0, 0.5),
    )
    counted = pacer._gather(snap)  # 1,500 people: the counting path
    monkeypatch.setattr(predictive, "GATHER_LIMIT", 10_000)
    gathered = pacer._gather(snap)
    assert counted[0] == pytest.approx(gathered[0], rel=1e-9, abs=1e-9)
    assert counted[1] == pytest.approx(gathered[1], rel=1e-9, abs=1e-9)
    assert counted[2] == pytest.approx(gathered[2], rel=1e-9, abs=1e-9)
