"""The asyncio face of the inbound queue: IVR sessions wait here for an agent.

:class:`QueueDesk` is the contract between the IVR handler (one task per caller) and whoever
owns the :class:`~dialer.domain.inbound_queue.InboundQueue`.  In ``dialer run`` that owner is
the single-writer engine; :class:`InboundDesk` is the reference implementation, used on its own
by the tests, the blended benchmark and any setup without the engine.  Everything here runs on
one event loop and never awaits while it changes the queue, so it keeps the single-writer rule.

Life of a caller: ``ticket = desk.join(caller)`` -> ``await ticket.wait_offer(timeout)`` gives
an :class:`AgentOffer` (the agent is reserved) -> the handler bridges -> ``ticket.connected(at)``
or, if the agent vanished (BRIDGERESULT=NONEXISTENT, trace 31), ``ticket.requeue()``.  A caller
who hangs up or gives up calls ``ticket.leave(reason)``, which hands a reserved agent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dialer.domain.inbound_queue import (
    InboundQueue,
    LeaveReason,
    Match,
    QueuedCaller,
    QueueFigures,
    ReadyAgent,
)

if TYPE_CHECKING:
    from dialer.config import InboundSettings


@dataclass(frozen=True, slots=True)
class AgentOffer:
    """An agent reserved for one caller: bridge to ``channel``."""

    agent_id: str
    channel: str
    match: Match


class QueueTicket(Protocol):
    """One caller's place in the queue, as the IVR handler sees it."""

    @property
    def call_id(self) -> str:
        """The caller's call id."""
        ...

    def position(self) -> int:
        """1-based place in line; 0 once an agent is reserved."""
        ...

    async def wait_offer(self, timeout: float | None) -> AgentOffer | None:  # noqa: ASYNC109
        """An agent for this caller, or None when ``timeout`` passed first."""
        ...

    def connected(self, at: float) -> None:
        """The bridge to the offered agent formed at ``at`` (monotonic seconds)."""
        ...

    def requeue(self, result: str = "FAILURE") -> None:
        """The offered agent could not be reached (``result``: BRIDGERESULT): back in line."""
        ...

    def leave(self, reason: LeaveReason) -> bool:
        """Leave without an agent; False (and nothing changes) if an agent is already offered."""
        ...


class QueueDesk(Protocol):
    """What the IVR needs from the owner of the inbound queue."""

    def join(self, caller: QueuedCaller) -> QueueTicket:
        """Put a caller in line."""
        ...

    def can_serve(self, skill: str | None) -> bool:
        """True if some logged-in agent could ever take such a caller (else: no agents)."""
        ...

    def is_open(self, queue: str) -> bool:
        """False while a supervisor has the queue paused: new callers hear the closed message."""
        ...

    def now(self) -> float:
        """The queue's clock (monotonic seconds)."""
        ...

    def real(self, seconds: float) -> float:
        """Real seconds for a duration on the queue's clock (a scaled clock in the demo)."""
        ...


@dataclass(slots=True)
class _Agent:
    agent_id: str
    channel: str
    skills: frozenset[str]
    inbound: bool
    outbound: bool
    ready_since: float | None  # None: logged in but busy (talking, wrap-up, paused)


class _Ticket:
    def __init__(self, desk: InboundDesk, caller: QueuedCaller) -> None:
        self._desk = desk
        self.caller = caller
        self.offer: AgentOffer | None = None
        self.done = False
        self._event = asyncio.Event()

    @property
    def call_id(self) -> str:
        """The caller's call id."""
        return self.caller.call_id

    def position(self) -> int:
        """1-based place in line; 0 once an agent is reserved."""
        return 0 if self.offer is not None else self._desk.queue.position(self.call_id)

    async def wait_offer(self, timeout: float | None) -> AgentOffer | None:  # noqa: ASYNC109
        """An agent for this caller, or None after ``timeout`` seconds."""
        if self.offer is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        return self.offer

    def connected(self, at: float) -> None:
        """The bridge formed at ``at``: the caller counts as answered."""
        assert self.offer is not None, "connected() without an offer"
        self._desk.queue.connected(self.call_id, at)
        self.done = True
        self._desk._tickets.pop(self.call_id, None)

    def requeue(self, result: str = "FAILURE") -> None:
        """The agent could not be reached: back to the same place in line."""
        assert self.offer is not None, "requeue() without an offer"
        self._desk.queue.requeue(self.call_id)
        # the agent vanished: they are not put back (the engine learns the truth from AMI)
        self.offer = None
        self._event.clear()
        self._desk.dispatch()

    def leave(self, reason: LeaveReason) -> bool:
        """Leave without an agent; False while an agent is offered (unless hanging up)."""
        if self.done:
            return True
        if self.offer is not None and reason is not LeaveReason.ABANDONED:
            return False  # an agent is on the way: take it rather than give up
        offer = self.offer
        self._desk.queue.leave(self.call_id, self._desk.now(), reason)
        self.done = True
        self._desk._tickets.pop(self.call_id, None)
        if offer is not None:  # the reserved agent is free again, with their old idle time
            self._desk._release(offer.agent_id, offer.match.agent.idle_since)
        self._desk.dispatch()
        return True

    def _give(self, offer: AgentOffer) -> None:
        self.offer = offer
        self._event.set()


def make_queue(settings: InboundSettings) -> InboundQueue:
    """The inbound queue as the settings describe it (``skill_relax_seconds`` 0 = strict)."""
    return InboundQueue(
        service_level_seconds=settings.service_level_seconds,
        skill_relax_seconds=settings.skill_relax_seconds or None,
        overflow_after_seconds=settings.overflow_after_seconds,
    )


class InboundDesk:
    """Owns an :class:`InboundQueue` and the ready agents; matches them as things change."""

    def __init__(
        self,
        queue: InboundQueue,
        clock: Callable[[], float] = time.monotonic,
        speed: float = 1.0,
    ) -> None:
        """``clock`` is the monotonic clock; ``speed`` how much faster it runs than real time."""
        self.queue = queue
        self._clock = clock
        self.speed = speed
        self._agents: dict[str, _Agent] = {}
        self._tickets: dict[str, _Ticket] = {}
        self.on_reserved: Callable[[AgentOffer], None] | None = None  # e.g. tell the pacer

    def now(self) -> float:
        """The desk's clock."""
        return self._clock()

    def real(self, seconds: float) -> float:
        """Real seconds for ``seconds`` of the desk's clock (``speed`` > 1: a scaled clock)."""
        return max(seconds, 0.0) / self.speed

    # -- agents

    def agent_ready(
        self,
        agent_id: str,
        channel: str,
        skills: frozenset[str] = frozenset(),
        *,
        inbound: bool = True,
        outbound: bool = True,
    ) -> None:
        """An agent is READY (logged in and idle since now)."""
        self._agents[agent_id] = _Agent(agent_id, channel, skills, inbound, outbound, self.now())
        self._staffing()
        self.dispatch()

    def agent_busy(self, agent_id: str) -> None:
        """An agent took another call, went to wrap-up or paused."""
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.ready_since = None

    def agent_gone(self, agent_id: str) -> None:
        """An agent logged out."""
        self._agents.pop(agent_id, None)
        self._staffing()

    def _staffing(self) -> None:
        self.queue.staffed_skills = frozenset().union(
            *(a.skills for a in self._agents.values() if a.inbound)
        )

    def ready_agents(self) -> list[ReadyAgent]:
        """Agents idle now, as the domain sees them."""
        return [
            ReadyAgent(a.agent_id, a.ready_since, a.skills, a.inbound, a.outbound)
            for a in self._agents.values()
            if a.ready_since is not None
        ]

    def is_open(self, queue: str) -> bool:
        """This stand-alone desk has no supervisor commands: always open."""
        return True

    def can_serve(self, skill: str | None) -> bool:
        """True if a logged-in inbound agent has the skill (or relaxing would allow anyone)."""
        inbound = [a for a in self._agents.values() if a.inbound]
        if skill is None or self.queue.skill_relax_seconds is not None:
            return bool(inbound)
        return any(skill in a.skills for a in inbound)

    # -- callers

    def join(self, caller: QueuedCaller) -> QueueTicket:
        """Put a caller in line and try to match at once."""
        ticket = _Ticket(self, caller)
        self._tickets[caller.call_id] = ticket
        self.queue.enqueue(caller)
        self.dispatch()
        return ticket

    def dispatch(self) -> list[AgentOffer]:
        """Match waiting callers with ready agents (longest idle first); return the offers."""
        offers: list[AgentOffer] = []
        for match in self.queue.matches(self.ready_agents(), self.now()):
            agent = self._agents[match.agent.agent_id]
            agent.ready_since = None  # reserved: counts as talking for the pacer from now
            offer = AgentOffer(agent.agent_id, agent.channel, match)
            offers.append(offer)
            self._tickets[match.caller.call_id]._give(offer)
            if self.on_reserved is not None:
                self.on_reserved(offer)
        return offers

    def figures(self) -> QueueFigures:
        """The queue's figures now."""
        return self.queue.figures(self.now())

    def _release(self, agent_id: str, idle_since: float) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.ready_since = idle_since
