"""The engine's agent table: its views always equal a scan of every agent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.domain import agent as ag
from dialer.domain.agent import AgentState, AgentStatus
from dialer.engine.agent_table import AgentTable

S = AgentStatus

IDS = ("a1", "a2", "a3", "a4", "a5")
CAMPAIGNS = ("", "1", "2")


def _state(agent_id: str, status: AgentStatus, campaign: str, idle: float) -> AgentState:
    return replace(AgentState(agent_id), status=status, campaign=campaign, idle_since=idle)


writes = st.lists(
    st.tuples(
        st.sampled_from(("set", "del", "pop", "setdefault", "update")),
        st.sampled_from(IDS),
        st.sampled_from(list(AgentStatus)),
        st.sampled_from(CAMPAIGNS),
        st.integers(0, 3).map(float),
    ),
    max_size=60,
)


def _check(table: AgentTable) -> None:
    plain = dict(table)
    for c in CAMPAIGNS:
        assert dict(table.members(c)) == {k: a for k, a in plain.items() if a.campaign == c}
        ready = {k: a for k, a in plain.items() if a.campaign == c and a.status is S.READY}
        assert dict(table.ready(c)) == ready
        assert table.logged_in_count(c) == sum(
            1 for a in plain.values() if a.campaign == c and a.logged_in
        )
        assert ag.longest_idle(table.ready(c), c) == ag.longest_idle(plain, c)
    assert table.ready_count() == sum(1 for a in plain.values() if a.status is AgentStatus.READY)
    assert table.in_wrapup() == [a for a in plain.values() if a.status is AgentStatus.WRAPUP]


@settings(max_examples=300, deadline=None)
@given(writes)
def test_views_match_a_full_scan_after_any_writes(
    ops: list[tuple[str, str, AgentStatus, str, float]],
) -> None:
    table = AgentTable()
    for op, key, status, campaign, idle in ops:
        state = _state(key, status, campaign, idle)
        if op == "set":
            table[key] = state
        elif op == "del" and key in table:
            del table[key]
        elif op == "pop":
            table.pop(key, None)
        elif op == "setdefault":
            table.setdefault(key, state)
        elif op == "update":
            table.update({key: state})
        _check(table)
    table.clear()
    _check(table)
    assert not table.members("1") and table.ready_count() == 0


def test_a_change_of_state_in_the_same_campaign_keeps_the_agents_place() -> None:
    table = AgentTable()
    for key in IDS:
        table[key] = _state(key, AgentStatus.READY, "1", 0.0)
    table["a2"] = _state("a2", AgentStatus.TALKING, "1", 0.0)
    assert list(table.members("1")) == list(IDS)
    assert list(table.ready("1")) == ["a1", "a3", "a4", "a5"]


def test_pop_of_an_unknown_agent_without_default_raises() -> None:
    with pytest.raises(KeyError):
        AgentTable().pop("nobody")
