"""THE agent state machine: one table, in one file.

States: LOGGED_OUT, READY, RESERVED, TALKING, WRAPUP, PAUSED(reason).  Every change of an
agent's state goes through :func:`apply`, which either returns the new state plus a
:class:`Transition` record (what the engine writes to the agent state log) or raises
:class:`IllegalTransition` and changes nothing (states are frozen values).

Why these states:
* RESERVED exists because the hand-off is two steps: the engine picks the longest-idle READY
  agent for an answered call, then the customer's FastAGI session runs ``EXEC Bridge`` (trace 18,
  28).  Between the two nobody else may take that agent; if the bridge fails
  (``BRIDGERESULT=NONEXISTENT``, trace 31) the reservation is released back to READY.
* WRAPUP starts when the customer leaves the bridge: the ``F()`` option sends the agent to the
  wrap-up context (trace 28, 30); a disposition (or the campaign's default on timeout) ends it.
* LOGOUT is legal from every logged-in state: an agent may hang up the softphone at any time
  (trace 34) and the line may drop mid-call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType


class AgentStatus(enum.StrEnum):
    """Where an agent is; PAUSED carries a reason on :class:`AgentState`."""

    LOGGED_OUT = "LOGGED_OUT"
    READY = "READY"
    RESERVED = "RESERVED"
    TALKING = "TALKING"
    WRAPUP = "WRAPUP"
    PAUSED = "PAUSED"


class AgentEvent(enum.StrEnum):
    """What can happen to an agent."""

    LOGIN = "login"  # PIN accepted, line nailed up, ready for calls
    LOGIN_PAUSED = "login_paused"  # PIN accepted, starts paused (e.g. before the shift)
    PAUSE = "pause"  # *1 or supervisor; also changes the reason while paused
    UNPAUSE = "unpause"  # *2 or supervisor
    RESERVE = "reserve"  # picked for an answered call (or a preview/callback dial)
    RELEASE = "release"  # the reserved call went away before the bridge
    CONNECT = "connect"  # both channels in the bridge
    CALL_END = "call_end"  # the customer left (or the agent pressed *0)
    WRAPUP_DONE = "wrapup_done"  # disposition entered, or the default one on timeout
    LOGOUT = "logout"  # *9, hang-up, supervisor, or the line dropped


S = AgentStatus
E = AgentEvent

#: The whole machine: (state, event) -> next state.  Anything missing is illegal.
TABLE: Mapping[tuple[AgentStatus, AgentEvent], AgentStatus] = MappingProxyType(
    {
        (S.LOGGED_OUT, E.LOGIN): S.READY,
        (S.LOGGED_OUT, E.LOGIN_PAUSED): S.PAUSED,
        (S.READY, E.PAUSE): S.PAUSED,
        (S.READY, E.RESERVE): S.RESERVED,
        (S.READY, E.LOGOUT): S.LOGGED_OUT,
        (S.PAUSED, E.PAUSE): S.PAUSED,
        (S.PAUSED, E.UNPAUSE): S.READY,
        (S.PAUSED, E.LOGOUT): S.LOGGED_OUT,
        (S.RESERVED, E.CONNECT): S.TALKING,
        (S.RESERVED, E.RELEASE): S.READY,
        (S.RESERVED, E.LOGOUT): S.LOGGED_OUT,
        (S.TALKING, E.CALL_END): S.WRAPUP,
        (S.TALKING, E.LOGOUT): S.LOGGED_OUT,
        (S.WRAPUP, E.WRAPUP_DONE): S.READY,
        (S.WRAPUP, E.LOGOUT): S.LOGGED_OUT,
    }
)

#: States in which an agent is logged in.
LOGGED_IN: frozenset[AgentStatus] = frozenset(s for s in AgentStatus if s is not S.LOGGED_OUT)

#: States in which an agent is busy with a call (the pacer's ``talking``).
ON_CALL: frozenset[AgentStatus] = frozenset({S.RESERVED, S.TALKING})

ILLEGAL_TRANSITION = "illegal_transition"


class AgentError(Exception):
    """A domain error about agents, with a stable ``code``."""

    code = "agent_error"


class IllegalTransition(AgentError):
    """The event is not allowed in the agent's current state; nothing was changed."""

    code = ILLEGAL_TRANSITION

    def __init__(self, agent_id: str, status: AgentStatus, event: AgentEvent) -> None:
        super().__init__(f"agent {agent_id}: {event.value} is not allowed while {status.value}")
        self.agent_id = agent_id
        self.status = status
        self.event = event


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent's state, as a value: replaced, never mutated."""

    agent_id: str
    status: AgentStatus = S.LOGGED_OUT
    since: float = 0.0  # when the current status began (engine clock, seconds)
    reason: str = ""  # pause reason while PAUSED
    call_id: str = ""  # the call while RESERVED / TALKING / WRAPUP
    channel: str = ""  # full channel name of the nailed-up line while logged in
    campaign: str = ""  # the campaign this agent works while logged in
    idle_since: float = 0.0  # when the agent last became READY (longest-idle ordering)

    @property
    def logged_in(self) -> bool:
        """Whether the agent has a nailed-up line."""
        return self.status is not S.LOGGED_OUT


@dataclass(frozen=True, slots=True)
class Transition:
    """One line of the agent state log."""

    agent_id: str
    at: float
    event: AgentEvent
    from_status: AgentStatus
    to_status: AgentStatus
    reason: str = ""
    call_id: str = ""


def can(status: AgentStatus, event: AgentEvent) -> bool:
    """Whether ``event`` is legal in ``status``."""
    return (status, event) in TABLE


def apply(
    state: AgentState,
    event: AgentEvent,
    at: float,
    *,
    reason: str = "",
    call_id: str = "",
    channel: str = "",
    campaign: str = "",
) -> tuple[AgentState, Transition]:
    """The state after ``event`` at time ``at``, and the log record; raises IllegalTransition.

    ``reason`` is the pause reason (PAUSE, LOGIN_PAUSED) or the logout cause; ``call_id`` goes with
    RESERVE; ``channel`` and ``campaign`` go with LOGIN / LOGIN_PAUSED.
    """
    target = TABLE.get((state.status, event))
    if target is None:
        raise IllegalTransition(state.agent_id, state.status, event)
    new = _next(state, event, target, at, reason=reason, call_id=call_id)
    if event in (E.LOGIN, E.LOGIN_PAUSED):
        new = replace(new, channel=channel, campaign=campaign)
    record = Transition(
        agent_id=state.agent_id,
        at=at,
        event=event,
        from_status=state.status,
        to_status=target,
        reason=reason if event in (E.PAUSE, E.LOGIN_PAUSED, E.LOGOUT) else "",
        call_id=new.call_id or state.call_id,
    )
    return new, record


def _next(
    state: AgentState,
    event: AgentEvent,
    target: AgentStatus,
    at: float,
    *,
    reason: str,
    call_id: str,
) -> AgentState:
    """The field values that go with entering ``target`` (kept apart to keep apply() short)."""
    if target is S.LOGGED_OUT:
        return AgentState(agent_id=state.agent_id, status=target, since=at)
    if target is S.PAUSED:
        return replace(state, status=target, since=at, reason=reason or "break", call_id="")
    if target is S.READY:
        return replace(state, status=target, since=at, reason="", call_id="", idle_since=at)
    if target is S.RESERVED:
        return replace(state, status=target, since=at, call_id=call_id)
    # TALKING and WRAPUP keep the call id: the disposition belongs to that call.
    return replace(state, status=target, since=at)


def longest_idle(agents: Mapping[str, AgentState], campaign: str) -> AgentState | None:
    """The READY agent of ``campaign`` idle the longest (ties by agent id), or None."""
    best: AgentState | None = None
    for agent in agents.values():
        if agent.status is not S.READY or agent.campaign != campaign:
            continue
        if best is None or (agent.idle_since, agent.agent_id) < (best.idle_since, best.agent_id):
            best = agent
    return best
