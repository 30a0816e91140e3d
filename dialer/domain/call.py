"""The outbound call state machine: one table, like the agent's.

A call is one originate.  It moves forward only::

    PENDING -> ORIGINATING -> RINGING -> ANSWERED -> WAITING -> CONNECTED -> ENDED
                                              \\-> DROPPING (machine/not sure) -> ENDED
                                    WAITING -> ABANDONING (no agent in time) -> ENDED

and can end from any phase (busy, no answer, hang-up, link lost...).  ENDED is final: a call
ends exactly once, which is what guarantees exactly one final ledger row per originate.
The result is not decided here but by :func:`dialer.domain.results.classify` from the facts the
engine collected; this table only says which phase a call is in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType


class CallPhase(enum.StrEnum):
    """Where a call is."""

    PENDING = "pending"  # lead reserved, originate not sent yet
    ORIGINATING = "originating"  # Originate queued, no channel news yet
    RINGING = "ringing"
    ANSWERED = "answered"  # up; AMD running (or about to ask FastAGI)
    WAITING = "waiting"  # live person waiting for an agent: the 2-second clock runs
    CONNECTED = "connected"  # bridged to an agent
    DROPPING = "dropping"  # machine / not-sure: message or hang-up under way
    ABANDONING = "abandoning"  # no agent in time: message and hang-up under way
    ENDED = "ended"


class CallEvent(enum.StrEnum):
    """What can happen to a call."""

    SENT = "sent"  # Originate accepted ("successfully queued")
    RING = "ring"
    ANSWER = "answer"
    LIVE = "live"  # AMD human (or no AMD, or NOTSURE counted live): needs an agent
    NOT_LIVE = "not_live"  # AMD machine, or NOTSURE dropped
    CONNECT = "connect"
    ABANDON = "abandon"
    END = "end"


P = CallPhase
C = CallEvent

_FORWARD: dict[tuple[CallPhase, CallEvent], CallPhase] = {
    (P.PENDING, C.SENT): P.ORIGINATING,
    (P.ORIGINATING, C.RING): P.RINGING,
    (P.ORIGINATING, C.ANSWER): P.ANSWERED,
    (P.RINGING, C.RING): P.RINGING,
    (P.RINGING, C.ANSWER): P.ANSWERED,
    (P.ANSWERED, C.LIVE): P.WAITING,
    (P.ANSWERED, C.NOT_LIVE): P.DROPPING,
    (P.WAITING, C.CONNECT): P.CONNECTED,
    (P.WAITING, C.ABANDON): P.ABANDONING,
    # A live call whose first agent vanished goes back to waiting (trace 31).
    (P.CONNECTED, C.LIVE): P.WAITING,
}

#: The whole machine; every phase but ENDED may end.
TABLE: Mapping[tuple[CallPhase, CallEvent], CallPhase] = MappingProxyType(
    {**_FORWARD, **{(phase, C.END): P.ENDED for phase in CallPhase if phase is not P.ENDED}}
)

#: Phases the pacer counts as ``ringing`` (launched, not yet classified).
RINGING_PHASES: frozenset[CallPhase] = frozenset({P.PENDING, P.ORIGINATING, P.RINGING, P.ANSWERED})


class IllegalCallTransition(Exception):
    """The event is not allowed in the call's phase; nothing was changed."""

    code = "illegal_transition"

    def __init__(self, call_id: str, phase: CallPhase, event: CallEvent) -> None:
        super().__init__(f"call {call_id}: {event.value} is not allowed while {phase.value}")
        self.call_id = call_id
        self.phase = phase
        self.event = event


@dataclass(frozen=True, slots=True)
class CallState:
    """One call's phase and timestamps (engine clock, seconds)."""

    call_id: str
    campaign: str
    lead_id: int
    number: str
    phase: CallPhase = P.PENDING
    launched_at: float = 0.0
    answered_at: float | None = None
    live_at: float | None = None  # the AMD verdict (or answer without AMD): 2-second clock
    connected_at: float | None = None
    ended_at: float | None = None
    agent_id: str = ""


def can(phase: CallPhase, event: CallEvent) -> bool:
    """Whether ``event`` is legal in ``phase``."""
    return (phase, event) in TABLE


def advance(call: CallState, event: CallEvent, at: float) -> CallState:
    """The call after ``event`` at ``at``; raises IllegalCallTransition and changes nothing."""
    target = TABLE.get((call.phase, event))
    if target is None:
        raise IllegalCallTransition(call.call_id, call.phase, event)
    if event is C.ANSWER:
        return replace(call, phase=target, answered_at=at)
    if event is C.LIVE:
        return replace(call, phase=target, live_at=call.live_at if call.live_at else at)
    if event is C.CONNECT:
        return replace(call, phase=target, connected_at=at)
    if event is C.END:
        return replace(call, phase=target, ended_at=at)
    return replace(call, phase=target)
