"""The controller's own inbound queue and the blending rules (pure: no I/O, the clock is an input).

Why our own queue and not ``app_queue``: app_queue *rings* its members, and a nailed-up agent
sitting in the hold loop cannot be rung (trace 25 and the dialplan contract).  So callers who want
a person wait here, inside the single-writer engine, and are handed to an agent with the same
``EXEC Bridge`` as an answered outbound call.

The engine owns one :class:`InboundQueue` and calls it from its single task:

* ``enqueue(caller)`` when an IVR caller reaches a queue node;
* ``next_match(ready_agents, now)`` whenever agents or callers change; the match reserves the
  agent (the engine counts it as talking for the pacer) and the caller is *handing* until
* ``connected(call_id, now)`` (the bridge formed) or ``requeue(call_id)`` (the agent vanished:
  BRIDGERESULT=NONEXISTENT, trace 31; the caller keeps their place);
* ``leave(call_id, now, reason)`` when the caller hangs up, times out or takes the offer of a
  callback or voicemail.

No caller is ever lost: ``offered == answered + abandoned + left + waiting + handing`` always.
Order is by priority (higher first), then first come first served; an agent is chosen longest
idle first among those who may take the call (skill/language, optionally relaxed after a wait).
Agents whose work is "outbound first" (:mod:`dialer.domain.work`) are *overflow* agents: they
are chosen only for a caller who has waited ``overflow_after_seconds`` and whom no inbound-first
agent can take; outbound-only agents are never offered (``ReadyAgent.inbound`` False).

Blending (:func:`plan_blend`): when agents are ready, waiting inbound callers are served before
any agent is offered to the pacer for new outbound calls, and :func:`hold_outbound` tells the
engine to launch nothing while an inbound caller has waited longer than a threshold.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class LeaveReason(enum.StrEnum):
    """Why a caller left the queue without reaching an agent."""

    ABANDONED = "abandoned"  # hung up while waiting
    TIMEOUT = "timeout"  # reached the maximum wait (then offered callback / voicemail)
    CALLBACK = "callback"  # chose a call back while waiting
    VOICEMAIL = "voicemail"  # chose to leave a message while waiting


@dataclass(frozen=True, slots=True)
class QueuedCaller:
    """A caller waiting for an agent."""

    call_id: str
    enqueued_at: float
    priority: int = 0
    skill: str | None = None  # e.g. the caller's language; None: anyone may answer
    queue: str = "main"


@dataclass(frozen=True, slots=True)
class ReadyAgent:
    """An agent who could take a call now."""

    agent_id: str
    idle_since: float
    skills: frozenset[str] = frozenset()
    inbound: bool = True  # takes inbound callers
    outbound: bool = True  # may be given to the pacer
    overflow: bool = False  # outbound first: takes only callers past the overflow time


@dataclass(frozen=True, slots=True)
class Match:
    """A caller handed to an agent (the agent is reserved from now on)."""

    caller: QueuedCaller
    agent: ReadyAgent
    at: float

    @property
    def wait_seconds(self) -> float:
        """How long the caller waited until the match."""
        return self.at - self.caller.enqueued_at


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """What the wallboard and reports show for a queue."""

    offered: int
    answered: int
    abandoned: int
    left: int  # timeout, callback or voicemail chosen in the queue
    waiting: int
    handing: int
    longest_wait: float
    average_wait: float  # of answered callers
    p90_wait: float  # of answered callers
    answered_within_threshold: int
    service_level: float  # see :meth:`InboundQueue.figures`
    service_level_seconds: float


class QueueError(Exception):
    """A queue operation that makes no sense (unknown or duplicate caller); nothing changed."""

    code = "queue_error"


@dataclass(slots=True)
class _Entry:
    caller: QueuedCaller
    seq: int


@dataclass(slots=True)
class _Tally:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    left: int = 0
    within: int = 0
    late_unanswered: int = 0  # abandoned or left after the service-level threshold
    waits: list[float] = field(default_factory=list)


class InboundQueue:
    """Callers waiting for agents, in priority then arrival order, with running figures."""

    def __init__(
        self,
        service_level_seconds: float = 20.0,
        skill_relax_seconds: float | None = None,
        overflow_after_seconds: float | None = None,
    ) -> None:
        """``skill_relax_seconds``: after this wait any agent may take a skilled caller;
        ``overflow_after_seconds``: after this wait an overflow (outbound-first) agent may take
        a caller no other agent can take now (None: never)."""
        self.service_level_seconds = service_level_seconds
        self.skill_relax_seconds = skill_relax_seconds
        self.overflow_after_seconds = overflow_after_seconds
        self._waiting: dict[str, _Entry] = {}
        self._handing: dict[str, Match] = {}
        self._seqs: dict[str, int] = {}  # place in line of callers being handed (for requeue)
        self._seq = 0
        self._tally = _Tally()
        # Skills some logged-in agent has (None: not tracked).  A caller whose skill nobody
        # has would otherwise wait for the relaxation time while agents sit idle.
        self.staffed_skills: frozenset[str] | None = None

    # -- changes

    def enqueue(self, caller: QueuedCaller) -> int:
        """Add a caller; return their position (1 = next)."""
        if caller.call_id in self._waiting or caller.call_id in self._handing:
            raise QueueError(f"caller {caller.call_id} is already queued")
        self._seq += 1
        self._waiting[caller.call_id] = _Entry(caller, self._seq)
        self._tally.offered += 1
        return self.position(caller.call_id)

    def next_match(self, ready: Sequence[ReadyAgent], now: float) -> Match | None:
        """Hand the first caller who can be served to the longest-idle agent allowed to serve.

        Inbound-first agents come first; an overflow agent is chosen only for a caller who has
        waited ``overflow_after_seconds`` and whom no inbound-first agent can take now.
        """
        by_idle = sorted((a for a in ready if a.inbound), key=lambda a: (a.idle_since, a.agent_id))
        first = [a for a in by_idle if not a.overflow]
        second = [a for a in by_idle if a.overflow]
        if not by_idle:
            return None
        for entry in self._ordered():
            agents = first + second if self.overflowed(entry.caller, now) else first
            for agent in agents:
                if self._may_serve(agent, entry.caller, now):
                    del self._waiting[entry.caller.call_id]
                    match = Match(entry.caller, agent, now)
                    self._handing[entry.caller.call_id] = match
                    self._seqs[entry.caller.call_id] = entry.seq
                    return match
        return None

    def matches(self, ready: Sequence[ReadyAgent], now: float) -> list[Match]:
        """Every match possible now (each agent at most once)."""
        out: list[Match] = []
        free = list(ready)
        while True:
            match = self.next_match(free, now)
            if match is None:
                return out
            out.append(match)
            free = [a for a in free if a.agent_id != match.agent.agent_id]

    def connected(self, call_id: str, now: float) -> Match:
        """The caller is bridged to the reserved agent: count them answered."""
        match = self._handing.pop(call_id, None)
        if match is None:
            raise QueueError(f"caller {call_id} is not being handed to an agent")
        self._seqs.pop(call_id, None)
        wait = now - match.caller.enqueued_at
        self._tally.answered += 1
        self._tally.waits.append(wait)
        if wait <= self.service_level_seconds:
            self._tally.within += 1
        return match

    def requeue(self, call_id: str) -> QueuedCaller:
        """The hand-off failed (agent gone): the caller goes back to their old place."""
        match = self._handing.pop(call_id, None)
        if match is None:
            raise QueueError(f"caller {call_id} is not being handed to an agent")
        seq = self._seqs.pop(call_id)
        self._waiting[call_id] = _Entry(match.caller, seq)
        return match.caller

    def leave(self, call_id: str, now: float, reason: LeaveReason) -> QueuedCaller:
        """The caller left without an agent (hang-up, timeout, callback or voicemail chosen)."""
        entry = self._waiting.pop(call_id, None)
        caller: QueuedCaller
        if entry is not None:
            caller = entry.caller
        else:
            match = self._handing.pop(call_id, None)
            if match is None:
                raise QueueError(f"caller {call_id} is not in the queue")
            self._seqs.pop(call_id, None)
            caller = match.caller
        if reason is LeaveReason.ABANDONED:
            self._tally.abandoned += 1
        else:
            self._tally.left += 1
        if now - caller.enqueued_at > self.service_level_seconds:
            self._tally.late_unanswered += 1
        return caller

    # -- questions

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._waiting or call_id in self._handing

    def __len__(self) -> int:
        return len(self._waiting)

    def position(self, call_id: str) -> int:
        """1-based place in line (0 if the caller is being handed to an agent)."""
        if call_id in self._handing:
            return 0
        for i, entry in enumerate(self._ordered(), start=1):
            if entry.caller.call_id == call_id:
                return i
        raise QueueError(f"caller {call_id} is not in the queue")

    def waiting(self) -> list[QueuedCaller]:
        """Callers waiting (not yet matched), in service order."""
        return [e.caller for e in self._ordered()]

    def handing(self) -> list[Match]:
        """Matches whose bridge has not formed yet."""
        return list(self._handing.values())

    def longest_wait(self, now: float) -> float:
        """The longest current wait among callers not yet matched (0 if none)."""
        return max((now - e.caller.enqueued_at for e in self._waiting.values()), default=0.0)

    def overflowed(self, caller: QueuedCaller, now: float) -> bool:
        """Whether the caller has waited long enough to be offered to overflow agents."""
        after = self.overflow_after_seconds
        return after is not None and now - caller.enqueued_at >= after

    def overflowing(self, now: float) -> int:
        """How many waiting callers overflow agents may take now."""
        return sum(1 for e in self._waiting.values() if self.overflowed(e.caller, now))

    def overdue(self, now: float, max_wait: float) -> list[QueuedCaller]:
        """Waiting callers who have reached the maximum wait."""
        return [e.caller for e in self._ordered() if now - e.caller.enqueued_at >= max_wait]

    def figures(self, now: float) -> QueueFigures:
        """Running figures.

        Service level = answered within the threshold / (answered + callers who abandoned or
        left after the threshold): a caller who hung up within the threshold never gave us the
        chance, so they count in neither part (the usual contact-centre convention).
        """
        t = self._tally
        waits = sorted(t.waits)
        denominator = t.answered + t.late_unanswered
        return QueueFigures(
            offered=t.offered,
            answered=t.answered,
            abandoned=t.abandoned,
            left=t.left,
            waiting=len(self._waiting),
            handing=len(self._handing),
            longest_wait=self.longest_wait(now),
            average_wait=sum(waits) / len(waits) if waits else 0.0,
            p90_wait=percentile(waits, 0.9),
            answered_within_threshold=t.within,
            service_level=t.within / denominator if denominator else 1.0,
            service_level_seconds=self.service_level_seconds,
        )

    # -- internals

    def _ordered(self) -> list[_Entry]:
        return sorted(self._waiting.values(), key=lambda e: (-e.caller.priority, e.seq))

    def _may_serve(self, agent: ReadyAgent, caller: QueuedCaller, now: float) -> bool:
        if caller.skill is None or caller.skill in agent.skills:
            return True
        if self.staffed_skills is not None and caller.skill not in self.staffed_skills:
            return True  # nobody has it: the skill cannot be honoured, so anyone serves
        relax = self.skill_relax_seconds
        return relax is not None and now - caller.enqueued_at >= relax


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


# --------------------------------------------------------------------------- blending


@dataclass(frozen=True, slots=True)
class BlendPlan:
    """What to do with the ready agents at one instant."""

    matches: tuple[Match, ...]  # inbound callers to hand over now (agents reserved)
    outbound_ready: tuple[ReadyAgent, ...]  # agents the pacer may count as ready
    hold_outbound: bool  # launch no new outbound calls now


def hold_outbound(queue: InboundQueue, now: float, threshold: float | None) -> bool:
    """True while an inbound caller has waited longer than ``threshold`` (None: never hold)."""
    return threshold is not None and len(queue) > 0 and queue.longest_wait(now) > threshold


def plan_blend(
    queue: InboundQueue,
    ready: Iterable[ReadyAgent],
    now: float,
    hold_threshold: float | None,
) -> BlendPlan:
    """Serve waiting inbound callers first; give only the agents left over to the pacer.

    Agents matched here are reserved for inbound: the engine puts them in the pacer's
    ``talking`` from this instant, so the pacer never launches calls for them.  While callers
    still wait (no eligible agent) and one has waited past ``hold_threshold``, no new outbound
    call is launched, so agents who finish their calls come to the queue.  An answered outbound
    call already waiting for an agent is not affected: the engine serves it before calling this
    (its 2-second clock is the law; an inbound caller can wait a few seconds).
    """
    agents = list(ready)
    matches = tuple(queue.matches(agents, now))
    taken = {m.agent.agent_id for m in matches}
    left = tuple(a for a in agents if a.agent_id not in taken and a.outbound)
    return BlendPlan(
        matches=matches,
        outbound_ready=left,
        hold_outbound=hold_outbound(queue, now, hold_threshold),
    )
