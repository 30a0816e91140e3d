"""The inbound queue and blending rules: order, skills, figures, and no caller ever lost."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dialer.domain.inbound_queue import (
    InboundQueue,
    LeaveReason,
    QueuedCaller,
    QueueError,
    ReadyAgent,
    hold_outbound,
    percentile,
    plan_blend,
)


def agent(name: str, idle: float, *skills: str, outbound: bool = True) -> ReadyAgent:
    return ReadyAgent(name, idle, frozenset(skills), outbound=outbound)


def test_fifo_and_longest_idle_agent() -> None:
    q = InboundQueue()
    assert q.enqueue(QueuedCaller("c1", 0.0)) == 1
    assert q.enqueue(QueuedCaller("c2", 1.0)) == 2
    m = q.next_match([agent("a", 5.0), agent("b", 2.0)], now=10.0)
    assert m is not None and m.caller.call_id == "c1" and m.agent.agent_id == "b"
    assert m.wait_seconds == 10.0
    assert q.position("c2") == 1 and q.position("c1") == 0


def test_priority_overtakes_but_fifo_within_priority() -> None:
    q = InboundQueue()
    q.enqueue(QueuedCaller("low1", 0.0))
    q.enqueue(QueuedCaller("high1", 1.0, priority=5))
    q.enqueue(QueuedCaller("low2", 2.0))
    q.enqueue(QueuedCaller("high2", 3.0, priority=5))
    assert [c.call_id for c in q.waiting()] == ["high1", "high2", "low1", "low2"]
    got = [m.caller.call_id for m in q.matches([agent(f"a{i}", i) for i in range(4)], 9.0)]
    assert got == ["high1", "high2", "low1", "low2"]


def test_skill_match_and_relaxation() -> None:
    q = InboundQueue(skill_relax_seconds=30.0)
    q.enqueue(QueuedCaller("hi-caller", 0.0, skill="hi"))
    q.enqueue(QueuedCaller("any-caller", 1.0))
    m = q.next_match([agent("english", 0.0, "en")], now=5.0)
    # the Hindi caller is skipped (no Hindi agent), the next caller is served
    assert m is not None and m.caller.call_id == "any-caller"
    assert q.next_match([agent("english", 0.0, "en")], now=10.0) is None
    m = q.next_match([agent("english", 0.0, "en")], now=31.0)  # relaxed after 30 s
    assert m is not None and m.caller.call_id == "hi-caller"


def test_unstaffed_skill_is_served_by_anyone() -> None:
    q = InboundQueue(skill_relax_seconds=None)
    q.enqueue(QueuedCaller("ta-caller", 0.0, skill="ta"))
    assert q.next_match([agent("a", 0.0, "en")], 1.0) is None  # strict, not tracked
    q.staffed_skills = frozenset({"en", "hi"})  # nobody logged in speaks Tamil
    m = q.next_match([agent("a", 0.0, "en")], 1.0)
    assert m is not None and m.caller.call_id == "ta-caller"


def test_requeue_restores_place_and_connected_counts() -> None:
    q = InboundQueue(service_level_seconds=20.0)
    q.enqueue(QueuedCaller("c1", 0.0))
    q.enqueue(QueuedCaller("c2", 1.0))
    m = q.next_match([agent("a", 0.0)], 3.0)
    assert m is not None
    q.requeue("c1")  # BRIDGERESULT=NONEXISTENT: the agent vanished
    assert [c.call_id for c in q.waiting()] == ["c1", "c2"]
    q.next_match([agent("b", 0.0)], 4.0)
    q.connected("c1", 4.5)
    q.leave("c2", 30.0, LeaveReason.ABANDONED)
    f = q.figures(30.0)
    assert (f.offered, f.answered, f.abandoned, f.waiting, f.handing) == (2, 1, 1, 0, 0)
    assert f.average_wait == 4.5 and f.p90_wait == 4.5
    # answered within 20 s: 1; abandoned after 20 s: 1 -> 50 %
    assert f.service_level == 0.5


def test_early_abandon_does_not_count_against_service_level() -> None:
    q = InboundQueue(service_level_seconds=20.0)
    q.enqueue(QueuedCaller("c1", 0.0))
    q.leave("c1", 5.0, LeaveReason.ABANDONED)
    assert q.figures(5.0).service_level == 1.0 and q.figures(5.0).abandoned == 1


def test_errors_change_nothing() -> None:
    q = InboundQueue()
    q.enqueue(QueuedCaller("c1", 0.0))
    with pytest.raises(QueueError):
        q.enqueue(QueuedCaller("c1", 1.0))
    with pytest.raises(QueueError):
        q.connected("c1", 1.0)
    with pytest.raises(QueueError):
        q.leave("nobody", 1.0, LeaveReason.TIMEOUT)
    assert q.figures(1.0).offered == 1 and len(q) == 1


def test_blend_serves_inbound_first_and_holds_outbound() -> None:
    q = InboundQueue()
    q.enqueue(QueuedCaller("c1", 0.0, skill="hi"))
    ready = [agent("a", 0.0, "hi"), agent("b", 1.0), agent("c", 2.0, outbound=False)]
    plan = plan_blend(q, ready, now=5.0, hold_threshold=30.0)
    assert [m.agent.agent_id for m in plan.matches] == ["a"]
    # c takes only inbound calls, so it is never offered to the pacer
    assert [a.agent_id for a in plan.outbound_ready] == ["b"]
    assert not plan.hold_outbound
    q.enqueue(QueuedCaller("c2", 1.0, skill="hi"))
    plan = plan_blend(q, [agent("b", 1.0)], now=40.0, hold_threshold=30.0)
    assert plan.matches == () and plan.hold_outbound
    assert not hold_outbound(q, 40.0, None)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.9) == 0.0
    assert percentile([float(i) for i in range(1, 11)], 0.9) == 9.0
    assert percentile([1.0, 2.0], 0.9) == 2.0


class QueueMachine(RuleBasedStateMachine):
    """Random arrivals, matches, hang-ups, failed hand-offs; nothing may be lost or reordered."""

    def __init__(self) -> None:
        super().__init__()
        self.q = InboundQueue(service_level_seconds=15.0)
        self.now = 0.0
        self.n = 0
        self.done: set[str] = set()
        self.handing: set[str] = set()
        self.answered_waits: list[float] = []

    @rule(dt=st.floats(0.0, 30.0), prio=st.integers(0, 2), skill=st.sampled_from([None, "hi"]))
    def arrive(self, dt: float, prio: int, skill: str | None) -> None:
        self.now += dt
        self.n += 1
        self.q.enqueue(QueuedCaller(f"c{self.n}", self.now, prio, skill))

    @rule(
        dt=st.floats(0.0, 10.0),
        agents=st.lists(st.tuples(st.floats(0.0, 100.0), st.booleans()), max_size=4),
    )
    def match(self, dt: float, agents: list[tuple[float, bool]]) -> None:
        self.now += dt
        before = self.q.waiting()
        ready = [
            agent(f"a{i}", idle, *(("hi",) if hi else ())) for i, (idle, hi) in enumerate(agents)
        ]
        free = list(ready)
        for m in self.q.matches(ready, self.now):
            # nobody ahead of the matched caller could have been served by a free agent
            for c in before[: before.index(m.caller)]:
                if c.call_id in self.q and c.call_id not in self.handing:
                    assert c.skill is not None
                    assert all(c.skill not in a.skills for a in free)
            # the longest-idle free agent allowed to serve this caller
            ok = [a for a in free if m.caller.skill is None or m.caller.skill in a.skills]
            assert m.agent.idle_since == min(a.idle_since for a in ok)
            free.remove(m.agent)
            self.handing.add(m.caller.call_id)

    @precondition(lambda self: bool(self.handing))
    @rule(data=st.data(), ok=st.booleans())
    def finish_handoff(self, data: st.DataObject, ok: bool) -> None:
        cid = data.draw(st.sampled_from(sorted(self.handing)))
        self.handing.discard(cid)
        if ok:
            m = self.q.connected(cid, self.now)
            self.answered_waits.append(self.now - m.caller.enqueued_at)
            self.done.add(cid)
        else:
            self.q.requeue(cid)

    @precondition(lambda self: len(self.q) > 0)
    @rule(data=st.data(), reason=st.sampled_from(list(LeaveReason)))
    def leave(self, data: st.DataObject, reason: LeaveReason) -> None:
        cid = data.draw(st.sampled_from([c.call_id for c in self.q.waiting()]))
        self.q.leave(cid, self.now, reason)
        self.done.add(cid)

    @invariant()
    def no_caller_lost(self) -> None:
        f = self.q.figures(self.now)
        assert f.offered == self.n
        assert f.offered == f.answered + f.abandoned + f.left + f.waiting + f.handing
        assert f.handing == len(self.handing)
        for i in range(1, self.n + 1):
            cid = f"c{i}"
            assert (cid in self.q) != (cid in self.done)

    @invariant()
    def fifo_within_priority(self) -> None:
        waiting = self.q.waiting()
        for a, b in itertools.pairwise(waiting):
            assert a.priority > b.priority or (
                a.priority == b.priority and int(a.call_id[1:]) < int(b.call_id[1:])
            )
        for i, c in enumerate(waiting, start=1):
            assert self.q.position(c.call_id) == i

    @invariant()
    def figures_consistent(self) -> None:
        f = self.q.figures(self.now)
        waits = sorted(self.answered_waits)
        assert f.answered == len(waits)
        if waits:
            assert f.average_wait == pytest.approx(sum(waits) / len(waits))
            assert waits[0] <= f.p90_wait <= waits[-1]
            assert f.average_wait <= waits[-1] + 1e-9
        assert 0.0 <= f.service_level <= 1.0
        assert f.answered_within_threshold == sum(1 for w in waits if w <= 15.0)
        assert f.longest_wait >= 0.0


QueueMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestQueueMachine = QueueMachine.TestCase
