"""The engine's agents by id, with per-campaign views kept up to date on every write.

With hundreds of agents the engine asked the same questions over and over by scanning every
agent: who is the longest-idle READY agent of this campaign (each answered call), how many are
logged in or READY (each tick, each counter update), who is in wrap-up (each tick).  The table is
a ``dict`` so that every writer (``agents[id] = state`` in the engine, the inbound queue and
preview dialling) keeps the views right without knowing about them; the views are read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from dialer.domain.agent import AgentState, AgentStatus

_EMPTY: Mapping[str, AgentState] = MappingProxyType({})


class AgentTable(dict[str, AgentState]):
    """``agent id -> AgentState``, indexed by campaign, READY status and wrap-up."""

    def __init__(self) -> None:
        super().__init__()
        # campaign -> {agent id: state} of every agent whose state names that campaign, in the
        # order they joined it (for one campaign: the order of the table itself)
        self._members: dict[str, dict[str, AgentState]] = {}
        self._ready: dict[str, dict[str, AgentState]] = {}  # campaign -> its READY agents
        self._logged_in: dict[str, int] = {}  # campaign -> agents logged in
        self._wrapup: dict[str, AgentState] = {}
        self._seq: dict[str, int] = {}  # agent id -> place in the table's iteration order

    # -- the views

    def members(self, campaign: str) -> Mapping[str, AgentState]:
        """Every agent whose state names ``campaign`` (logged in or not)."""
        return self._members.get(campaign, _EMPTY)

    def ready(self, campaign: str) -> Mapping[str, AgentState]:
        """The READY agents of ``campaign``."""
        return self._ready.get(campaign, _EMPTY)

    def logged_in_count(self, campaign: str) -> int:
        """How many agents of ``campaign`` are logged in."""
        return self._logged_in.get(campaign, 0)

    def ready_count(self) -> int:
        """READY agents over all campaigns."""
        return sum(len(r) for r in self._ready.values())

    def in_wrapup(self) -> list[AgentState]:
        """Agents in wrap-up, in the table's own iteration order."""
        return sorted(self._wrapup.values(), key=lambda a: self._seq[a.agent_id])

    # -- keeping them right

    def _add(self, key: str, a: AgentState) -> None:
        self._members.setdefault(a.campaign, {})[key] = a
        if a.status is AgentStatus.READY:
            self._ready.setdefault(a.campaign, {})[key] = a
        elif a.status is AgentStatus.WRAPUP:
            self._wrapup[key] = a
        if a.logged_in:
            self._logged_in[a.campaign] = self._logged_in.get(a.campaign, 0) + 1

    def _drop(self, key: str, a: AgentState, *, members: bool = True) -> None:
        if members:
            mine = self._members.get(a.campaign)
            if mine is not None:
                mine.pop(key, None)
                if not mine:
                    del self._members[a.campaign]
        ready = self._ready.get(a.campaign)
        if ready is not None:
            ready.pop(key, None)
            if not ready:
                del self._ready[a.campaign]
        self._wrapup.pop(key, None)
        if a.logged_in:
            left = self._logged_in.get(a.campaign, 0) - 1
            if left > 0:
                self._logged_in[a.campaign] = left
            else:
                self._logged_in.pop(a.campaign, None)

    def __setitem__(self, key: str, value: AgentState) -> None:
        old = dict.get(self, key)
        if old is None:
            self._seq[key] = len(self._seq)
        else:
            # Same campaign: the agent keeps its place among the members (the scan order).
            self._drop(key, old, members=old.campaign != value.campaign)
        dict.__setitem__(self, key, value)
        self._add(key, value)

    def __delitem__(self, key: str) -> None:
        old = self[key]
        dict.__delitem__(self, key)
        self._drop(key, old)
        self._seq.pop(key, None)

    def pop(self, key: str, *default: Any) -> Any:
        """As ``dict.pop``."""
        if key in self:
            value = self[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def setdefault(self, key: str, default: AgentState) -> AgentState:
        """As ``dict.setdefault``."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: AgentState) -> None:
        """As ``dict.update``."""
        items: Iterable[tuple[str, AgentState]]
        for other in args:
            items = other.items() if isinstance(other, Mapping) else other
            for key, value in items:
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def clear(self) -> None:
        """As ``dict.clear``."""
        dict.clear(self)
        for view in (self._members, self._ready, self._logged_in, self._wrapup, self._seq):
            view.clear()

    def popitem(self) -> tuple[str, AgentState]:
        """As ``dict.popitem``."""
        key, value = dict.popitem(self)
        dict.__setitem__(self, key, value)
        del self[key]
        return key, value
