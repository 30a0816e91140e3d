"""Agents' work assignment (pure): choosing a mode, inbound dispatch tiers, the pacer's share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.inbound_queue import InboundQueue, QueuedCaller, ReadyAgent
from dialer.domain.work import (
    DEFAULT,
    WorkError,
    WorkMode,
    choose,
    inbound_share,
    parse_mode,
)

M = WorkMode


def ready(name: str, idle: float, mode: WorkMode, *skills: str) -> ReadyAgent:
    return ReadyAgent(
        name,
        idle,
        frozenset(skills),
        inbound=mode.takes_inbound,
        outbound=mode.takes_outbound,
        overflow=mode.overflow,
    )


@pytest.mark.parametrize(
    ("current", "kwargs", "expected"),
    [
        (DEFAULT, {"priority": "outbound"}, M.OUTBOUND_FIRST),
        (M.OUTBOUND_FIRST, {"priority": "inbound"}, M.INBOUND_FIRST),
        (M.OUTBOUND_FIRST, {"work": "blended"}, M.OUTBOUND_FIRST),  # keeps its priority
        (M.INBOUND_ONLY, {"work": "blended"}, M.INBOUND_FIRST),
        (M.OUTBOUND_ONLY, {"priority": "outbound"}, M.OUTBOUND_FIRST),  # priority -> blended
        (DEFAULT, {"work": "inbound_only"}, M.INBOUND_ONLY),
        (M.OUTBOUND_FIRST, {"work": "outbound_only", "campaign": True}, M.OUTBOUND_ONLY),
        (M.OUTBOUND_ONLY, {"campaign": True}, M.OUTBOUND_ONLY),  # a move keeps the work
        (M.INBOUND_ONLY, {"campaign": True}, M.INBOUND_FIRST),  # to a campaign: blended again
    ],
)
def test_choose(current: WorkMode, kwargs: dict[str, object], expected: WorkMode) -> None:
    assert choose(current, **kwargs) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"work": "inbound_only", "priority": "outbound"}, "blended agents only"),
        ({"work": "outbound_only", "priority": "inbound"}, "blended agents only"),
        ({"work": "inbound_only", "campaign": True}, "leave out the campaign"),
        ({"work": "sometimes"}, "use one of"),
        ({"priority": "high"}, "use one of"),
    ],
)
def test_choose_refuses_conflicts(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(WorkError, match=says):
        choose(DEFAULT, **kwargs)  # type: ignore[arg-type]


def test_stored_values_read_back_and_unknown_is_the_default() -> None:
    assert all(parse_mode(m.value) is m for m in WorkMode)
    assert parse_mode("") is DEFAULT and parse_mode("garbage") is DEFAULT
    assert [m.short for m in WorkMode] == ["in first", "out first", "in only", "out only"]


def test_inbound_first_before_a_longer_idle_outbound_first_agent() -> None:
    q = InboundQueue(overflow_after_seconds=20.0)
    q.enqueue(QueuedCaller("c1", 0.0))
    agents = [ready("out-first", 0.0, M.OUTBOUND_FIRST), ready("in-first", 9.0, M.INBOUND_FIRST)]
    m = q.next_match(agents, 30.0)  # even past the overflow time: a first agent is free
    assert m is not None and m.agent.agent_id == "in-first"


def test_overflow_only_after_the_wait_and_never_outbound_only() -> None:
    q = InboundQueue(overflow_after_seconds=20.0)
    q.enqueue(QueuedCaller("c1", 0.0))
    agents = [ready("out-only", 0.0, M.OUTBOUND_ONLY), ready("out-first", 1.0, M.OUTBOUND_FIRST)]
    assert q.next_match(agents, 19.9) is None
    assert q.overflowing(19.9) == 0 and q.overflowing(20.0) == 1
    m = q.next_match(agents, 20.0)
    assert m is not None and m.agent.agent_id == "out-first"
    q.enqueue(QueuedCaller("c2", 0.0))
    assert q.next_match([ready("out-only", 0.0, M.OUTBOUND_ONLY)], 99.0) is None


def test_overflow_when_no_first_agent_can_serve_the_skill() -> None:
    q = InboundQueue(overflow_after_seconds=5.0)
    q.enqueue(QueuedCaller("hindi", 0.0, skill="hi"))
    agents = [
        ready("en-first", 0.0, M.INBOUND_FIRST, "en"),
        ready("hi-out", 3.0, M.OUTBOUND_FIRST, "hi"),
    ]
    assert q.next_match(agents, 4.0) is None
    m = q.next_match(agents, 6.0)
    assert m is not None and m.agent.agent_id == "hi-out"


def test_no_overflow_when_switched_off() -> None:
    q = InboundQueue(overflow_after_seconds=None)
    q.enqueue(QueuedCaller("c1", 0.0))
    assert q.next_match([ready("out-first", 0.0, M.OUTBOUND_FIRST)], 1e6) is None


modes = st.sampled_from(list(WorkMode))


@given(
    agent_modes=st.lists(modes, max_size=8),
    waits=st.lists(st.floats(0.0, 60.0), max_size=8),
    overflow_after=st.floats(0.0, 40.0),
)
def test_dispatch_respects_every_agents_work(
    agent_modes: list[WorkMode], waits: list[float], overflow_after: float
) -> None:
    now = 100.0
    q = InboundQueue(overflow_after_seconds=overflow_after)
    for i, wait in enumerate(waits):
        q.enqueue(QueuedCaller(f"c{i}", now - wait))
    agents = [ready(f"a{i}", float(i), m) for i, m in enumerate(agent_modes)]
    by_id = {a.agent_id: m for a, m in zip(agents, agent_modes, strict=True)}
    matches = q.matches(agents, now)
    taken = {m.agent.agent_id for m in matches}
    assert len(taken) == len(matches)  # each agent at most once
    first_left = [a for a in agents if by_id[a.agent_id].inbound_first and a.agent_id not in taken]
    for m in matches:
        mode = by_id[m.agent.agent_id]
        assert mode.takes_inbound  # never an outbound-only agent
        if mode.overflow:
            assert m.wait_seconds >= overflow_after  # overflow only for a caller waited long
            assert not first_left  # ... and only with no inbound-first agent free
    # Nobody is left waiting while an agent who would take them is free.
    if len(q):
        assert not first_left
        oldest = max(now - c.enqueued_at for c in q.waiting())
        if oldest >= overflow_after:
            assert all(
                by_id[a.agent_id] is not M.OUTBOUND_FIRST or a.agent_id in taken for a in agents
            )


@given(
    waiting=st.integers(0, 50),
    overdue=st.integers(0, 50),
    first=st.integers(0, 50),
    overflow=st.integers(0, 50),
)
def test_inbound_share_is_bounded(waiting: int, overdue: int, first: int, overflow: int) -> None:
    overdue = min(overdue, waiting)
    share = inbound_share(waiting, overdue, first, overflow)
    assert 0 <= share <= waiting
    assert share <= first + min(overdue, overflow)
    assert share >= min(waiting, first)  # at least as many as the first agents can take
    assert inbound_share(waiting, overdue, first, 0) == min(waiting, first)


def test_inbound_share_examples() -> None:
    assert inbound_share(3, 0, 5, 0) == 3  # today's behaviour: every caller counts
    assert inbound_share(3, 0, 0, 4) == 0  # outbound-first agents, nobody overdue
    assert inbound_share(3, 2, 0, 4) == 2  # two overdue callers will take two of them
    assert inbound_share(3, 3, 1, 1) == 2
