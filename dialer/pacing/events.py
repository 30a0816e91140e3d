"""What the pacer sees: the snapshot of a campaign and the call/agent events, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

UnansweredReason: TypeAlias = Literal["no_answer", "busy", "congestion", "failed"]
UNANSWERED_REASONS: frozenset[str] = frozenset({"no_answer", "busy", "congestion", "failed"})


def _as_floats(name: str, value: object) -> tuple[float, ...]:
    """Coerce a sequence of elapsed seconds to a tuple of floats; reject anything else."""
    if type(value) is tuple:  # the engine's normal case: take it as it is, cheaply
        return value
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of seconds, not {type(value).__name__}")
    return tuple(float(v) for v in value)


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """One campaign at one instant: agents by state and calls in flight (elapsed seconds each)."""

    now: float
    ready_agents: int
    talking: tuple[float, ...] = ()
    wrapping: tuple[float, ...] = ()
    ringing: tuple[float, ...] = ()
    waiting: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.ready_agents < 0:
            raise ValueError(f"ready_agents must be >= 0, got {self.ready_agents}")
        # Coercion keeps the contract forgiving (lists are fine) without copying tuples.
        for name in ("talking", "wrapping", "ringing", "waiting"):
            object.__setattr__(self, name, _as_floats(name, getattr(self, name)))


@dataclass(frozen=True, slots=True)
class CallLaunched:
    """The engine originated one call the pacer asked for."""

    at: float


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A call was classified as answered (after AMD if any); ``live`` is a person to connect."""

    at: float
    ring_seconds: float
    live: bool


@dataclass(frozen=True, slots=True)
class CallUnanswered:
    """A call ended without an answer: no_answer, busy, congestion or failed."""

    at: float
    ring_seconds: float
    reason: UnansweredReason

    def __post_init__(self) -> None:
        if self.reason not in UNANSWERED_REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; one of {sorted(UNANSWERED_REASONS)}")


@dataclass(frozen=True, slots=True)
class CallConnected:
    """A live answer was bridged to an agent after waiting ``wait_seconds``."""

    at: float
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    """A live answer got no agent in time (or hung up while waiting)."""

    at: float
    wait_seconds: float


@dataclass(frozen=True, slots=True)
class TalkEnded:
    """An agent's conversation ended after ``talk_seconds``; the agent is now in wrap-up."""

    at: float
    talk_seconds: float


@dataclass(frozen=True, slots=True)
class WrapEnded:
    """An agent finished wrap-up after ``wrap_seconds``."""

    at: float
    wrap_seconds: float


PacingEvent: TypeAlias = (
    CallLaunched
    | CallAnswered
    | CallUnanswered
    | CallConnected
    | CallAbandoned
    | TalkEnded
    | WrapEnded
)
