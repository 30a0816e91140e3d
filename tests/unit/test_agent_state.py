"""The agent state machine: the table, illegal transitions, and random event sequences."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dialer.domain.agent import (
    LOGGED_IN,
    TABLE,
    AgentEvent,
    AgentState,
    AgentStatus,
    IllegalTransition,
    apply,
    can,
    longest_idle,
)

S = AgentStatus
E = AgentEvent


def test_login_pause_unpause_reserve_talk_wrapup_ready() -> None:
    a = AgentState("1001")
    a, t = apply(a, E.LOGIN, 1.0, channel="PJSIP/seat001-00000001", campaign="c1")
    assert (t.from_status, t.to_status) == (S.LOGGED_OUT, S.READY)
    assert a.channel == "PJSIP/seat001-00000001" and a.campaign == "c1" and a.idle_since == 1.0
    a, t = apply(a, E.PAUSE, 2.0, reason="lunch")
    assert a.status is S.PAUSED and a.reason == "lunch" and t.reason == "lunch"
    a, _ = apply(a, E.UNPAUSE, 3.0)
    assert a.status is S.READY and a.reason == "" and a.idle_since == 3.0
    a, t = apply(a, E.RESERVE, 4.0, call_id="call-1")
    assert a.status is S.RESERVED and a.call_id == "call-1" and t.call_id == "call-1"
    a, _ = apply(a, E.CONNECT, 4.01)
    a, t = apply(a, E.CALL_END, 30.0)
    assert a.status is S.WRAPUP and a.call_id == "call-1" and t.call_id == "call-1"
    a, t = apply(a, E.WRAPUP_DONE, 35.0)
    assert a.status is S.READY and a.call_id == "" and t.call_id == "call-1"
    assert a.channel == "PJSIP/seat001-00000001"


def test_illegal_transition_raises_and_changes_nothing() -> None:
    a = AgentState("7", status=S.TALKING, since=5.0, call_id="c", channel="x", campaign="k")
    with pytest.raises(IllegalTransition) as info:
        apply(a, E.PAUSE, 6.0, reason="x")
    assert info.value.code == "illegal_transition"
    assert a == AgentState("7", status=S.TALKING, since=5.0, call_id="c", channel="x", campaign="k")


def test_logout_is_legal_from_every_logged_in_state_and_clears_everything() -> None:
    for status in LOGGED_IN:
        a = AgentState("9", status=status, call_id="c", channel="ch", campaign="k")
        out, t = apply(a, E.LOGOUT, 1.0, reason="hangup")
        assert out == AgentState("9", status=S.LOGGED_OUT, since=1.0)
        assert t.reason == "hangup"


def test_reserve_only_from_ready() -> None:
    legal = {status for status in AgentStatus if can(status, E.RESERVE)}
    assert legal == {S.READY}


def test_longest_idle_picks_oldest_ready_of_the_campaign() -> None:
    agents = {
        "1": AgentState("1", S.READY, campaign="a", idle_since=5.0),
        "2": AgentState("2", S.READY, campaign="a", idle_since=3.0),
        "3": AgentState("3", S.READY, campaign="b", idle_since=1.0),
        "4": AgentState("4", S.PAUSED, campaign="a", idle_since=0.0),
    }
    best = longest_idle(agents, "a")
    assert best is not None and best.agent_id == "2"
    assert longest_idle(agents, "zzz") is None


class AgentMachine(RuleBasedStateMachine):
    """Random events against the table, checked against an independent model."""

    def __init__(self) -> None:
        super().__init__()
        self.state = AgentState("42")
        self.now = 0.0
        self.log: list[tuple[AgentStatus, AgentStatus]] = []
        self.model_status = S.LOGGED_OUT

    @rule(event=st.sampled_from(list(AgentEvent)), reason=st.sampled_from(["", "lunch"]))
    def fire(self, event: AgentEvent, reason: str) -> None:
        self.now += 1.0
        before = self.state
        expected = _model(self.model_status, event)
        try:
            self.state, t = apply(
                self.state, event, self.now, reason=reason, call_id="c1", channel="ch", campaign="k"
            )
        except IllegalTransition:
            assert expected is None
            assert self.state is before
            return
        assert expected is not None
        assert t.from_status is before.status and t.to_status is self.state.status
        if self.log:
            assert self.log[-1][1] is t.from_status  # the log is a chain
        self.log.append((t.from_status, t.to_status))
        self.model_status = expected

    @invariant()
    def consistent(self) -> None:
        s = self.state
        assert s.status is self.model_status
        assert (s.status is S.PAUSED) == bool(s.reason)
        assert bool(s.call_id) == (s.status in (S.RESERVED, S.TALKING, S.WRAPUP))
        assert bool(s.channel) == s.logged_in
        if s.status is S.LOGGED_OUT:
            assert s == AgentState("42", since=s.since)


def _model(status: AgentStatus, event: AgentEvent) -> AgentStatus | None:
    """An independent statement of the rules, written as prose-like code."""
    if event is E.LOGOUT:
        return S.LOGGED_OUT if status is not S.LOGGED_OUT else None
    rules = {
        S.LOGGED_OUT: {E.LOGIN: S.READY, E.LOGIN_PAUSED: S.PAUSED},
        S.READY: {E.PAUSE: S.PAUSED, E.RESERVE: S.RESERVED},
        S.PAUSED: {E.PAUSE: S.PAUSED, E.UNPAUSE: S.READY},
        S.RESERVED: {E.CONNECT: S.TALKING, E.RELEASE: S.READY},
        S.TALKING: {E.CALL_END: S.WRAPUP},
        S.WRAPUP: {E.WRAPUP_DONE: S.READY},
    }
    return rules[status].get(event)


TestAgentMachine = AgentMachine.TestCase


def test_table_matches_model_exhaustively() -> None:
    for status in AgentStatus:
        for event in AgentEvent:
            assert TABLE.get((status, event)) == _model(status, event)
