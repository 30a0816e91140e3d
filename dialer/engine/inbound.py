"""The inbound queue inside the single writer, and the IVR's desk onto it (issue 10).

:class:`EngineInbound` is owned by the :class:`~dialer.engine.core.Engine` (``engine.inbound``)
and only ever called from its task: it applies the inbound inputs, matches waiting callers with
READY agents (reserving them with the agent machine's RESERVE, so the pacer counts them as
talking at once), and tells the pacer to hold launches while an inbound caller waits too long.
The engine calls it at three points (each marked ``# inbound (issue 10)`` in core.py):

* ``_apply``: inputs it does not know go to :meth:`EngineInbound.apply`;
* ``_agent_event``: when an agent becomes READY and no answered outbound call took them,
  :meth:`EngineInbound.dispatch` (so waiting inbound callers come before new outbound calls);
* ``_on_tick``: :meth:`EngineInbound.dispatch` (skill relaxation) and, in ``_pace``,
  :meth:`EngineInbound.hold_outbound` before the pacer is asked.

It also keeps each agent's work assignment (issue 9, :mod:`dialer.domain.work`): inbound first
(the default), outbound first (inbound callers only as overflow), inbound only, outbound only,
and the campaign a supervisor put them on.  ``queue.assign`` changes it (:meth:`assign`), the
record keeps it (loaded at start with :meth:`load_work`), and a login honours it
(:meth:`login_campaign`: an inbound-only agent works no campaign, so no pacer counts them and
no outbound call is given to them).

:class:`EngineDesk` is the :class:`~dialer.agi_scripts.inbound_desk.QueueDesk` the IVR handler
uses in ``dialer run``: every change is an input posted to the engine; offers come back on the
ticket.  A bridge that formed moves the agent RESERVED -> TALKING (CONNECT); the ``F()`` of the
Bridge then sends the agent to wrap-up as for outbound calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dialer.agi_scripts.inbound_desk import AgentOffer, make_queue
from dialer.domain import work as wk
from dialer.domain.agent import AgentEvent, AgentState, AgentStatus
from dialer.domain.inbound_queue import (
    InboundQueue,
    LeaveReason,
    QueuedCaller,
    QueueError,
    ReadyAgent,
    hold_outbound,
)
from dialer.domain.work import WorkMode
from dialer.engine import commands as cmds
from dialer.engine.commands import Command, Reply
from dialer.engine.inputs import ActionDoneIn

if TYPE_CHECKING:
    from dialer.engine.core import Engine

log = logging.getLogger("dialer.engine.inbound")

LIVE_KEY = "inbound:main"  # the queue's row among the live counters
PUBLISH_EVERY = 0.25


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class InboundJoinIn:
    """A caller reached a queue node."""

    caller: QueuedCaller
    ticket: EngineTicket


@dataclass(frozen=True, slots=True)
class InboundLeaveIn:
    """A caller left without an agent (hang-up, timeout, callback or voicemail)."""

    call_id: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class InboundConnectedIn:
    """The caller's bridge to the offered agent formed at ``at`` (engine clock)."""

    call_id: str
    agent: str
    at: float


@dataclass(frozen=True, slots=True)
class InboundRequeueIn:
    """The offered agent could not be reached (BRIDGERESULT, trace 31): back in line."""

    call_id: str
    agent: str
    result: str


@dataclass(frozen=True, slots=True)
class WorkKeptIn:
    """A work assignment made ahead of the agent's login is in the record: use it at login."""

    agent: str
    work: WorkMode
    campaign: int | None


@dataclass(frozen=True, slots=True)
class AgentSkillsIn:
    """An agent's skills and languages, looked up after they logged in (effect result)."""

    agent: str
    skills: frozenset[str]


InboundInput = (
    InboundJoinIn | InboundLeaveIn | InboundConnectedIn | InboundRequeueIn | AgentSkillsIn
)
SkillsLoader = Callable[[str], Awaitable[frozenset[str]]]


# --------------------------------------------------------------------------- the engine side


class EngineInbound:
    """The engine's inbound queue: called only from the engine's single task."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.settings.inbound
        self.queue: InboundQueue = make_queue(self.settings)
        self.tickets: dict[str, EngineTicket] = {}
        self.skills: dict[str, frozenset[str]] = {}  # agent -> skills (languages), if known
        self._published = float("-inf")
        # How to learn an agent's skills (the database's languages + skills); None: no skills.
        self.skills_loader: SkillsLoader | None = None
        self._loading: set[str] = set()
        # Queues a supervisor paused (queue.pause): new callers get the closed message.
        self.paused: set[str] = set()
        # issue 9: each agent's work (absent: the default) and the campaign a supervisor put
        # them on (preferred at login); ``_resume`` is where an inbound-only agent goes back to.
        self.work: dict[str, WorkMode] = {}
        self.home: dict[str, int] = {}
        self._resume: dict[str, int] = {}

    def apply(self, item: object) -> bool:
        """Apply an inbound input; False if ``item`` is not one."""
        try:
            if isinstance(item, InboundJoinIn):
                self.tickets[item.caller.call_id] = item.ticket
                self.queue.enqueue(item.caller)
                self.dispatch()
            elif isinstance(item, InboundLeaveIn):
                self._leave(item)
            elif isinstance(item, InboundConnectedIn):
                self._connected(item)
            elif isinstance(item, InboundRequeueIn):
                self._requeue(item)
            elif isinstance(item, WorkKeptIn):
                self._kept(item)
            elif isinstance(item, AgentSkillsIn):
                self.skills[item.agent] = item.skills
                self._loading.discard(item.agent)
                self.dispatch()
            else:
                return False
        except QueueError as exc:  # a late or repeated input: nothing changed
            log.info("inbound: %s", exc)
        return True

    def dispatch(self) -> None:
        """Hand waiting callers to READY agents, longest idle first (reserving them)."""
        self._publish()
        self._learn_skills()
        if not len(self.queue):
            return
        e = self.engine
        self.queue.staffed_skills = frozenset().union(
            *(
                self.skills.get(a.agent_id, frozenset())
                for a in e.agents.values()
                if a.logged_in and self.mode(a.agent_id).takes_inbound
            )
        )
        ready = []
        for a in e.agents.values():
            if a.status is AgentStatus.READY:
                mode = self.mode(a.agent_id)
                ready.append(
                    ReadyAgent(
                        a.agent_id,
                        a.idle_since,
                        self.skills.get(a.agent_id, frozenset()),
                        inbound=mode.takes_inbound,
                        outbound=mode.takes_outbound,
                        overflow=mode.overflow,
                    )
                )
        for match in self.queue.matches(ready, e.clock.now()):
            agent = match.agent.agent_id
            e._agent_event(agent, AgentEvent.RESERVE, call_id=match.caller.call_id)
            ticket = self.tickets.get(match.caller.call_id)
            if ticket is not None:
                ticket._give(AgentOffer(agent, e.agents[agent].channel, match))

    def hold_outbound(self, now: float, campaign: str | None = None) -> bool:
        """True while an inbound caller has waited longer than the hold threshold (for
        ``campaign``: only if some agent of it takes inbound callers; holding a campaign of
        outbound-only agents frees nobody for the queue)."""
        if not hold_outbound(self.queue, now, self.settings.hold_outbound_after_seconds or None):
            return False
        if campaign is None:
            return True
        return any(
            a.campaign == campaign and a.logged_in and self.mode(a.agent_id).takes_inbound
            for a in self.engine.agents.values()
        )

    def pacing_view(self, snapshot: Any, campaign: str | None = None) -> Any:
        """The campaign's snapshot with the inbound callers who will take its agents added to
        ``waiting``: each takes the next agent who frees up (unless an answered outbound call
        is waiting then), so the pacer must not count that agent for a new call.

        Only the campaign's agents who would take them count (``campaign`` given): its
        inbound-first agents, and its outbound-first agents for callers past the overflow
        time; outbound-only agents take none.  Without ``campaign``: every caller counts.
        """
        n = len(self.queue)
        if not n:
            return snapshot
        if campaign is not None:
            first = overflow = 0
            for a in self.engine.agents.values():
                if a.campaign != campaign or not a.logged_in or a.status is AgentStatus.PAUSED:
                    continue
                mode = self.mode(a.agent_id)
                if mode.inbound_first:
                    first += 1
                elif mode.overflow:
                    overflow += 1
            overdue = self.queue.overflowing(self.engine.clock.now()) if overflow else 0
            n = wk.inbound_share(n, overdue, first, overflow)
            if not n:
                return snapshot
        return dataclasses.replace(snapshot, waiting=(*snapshot.waiting, *([0.0] * n)))

    # -- work assignment (issue 9)

    def mode(self, agent: str) -> WorkMode:
        """The agent's work assignment (the default when never set)."""
        return self.work.get(agent, wk.DEFAULT)

    def load_work(self, rows: Mapping[str, tuple[str, int | None]]) -> None:
        """The assignments kept in the record (agent -> (work, campaign id)), at start."""
        for agent, (value, campaign) in rows.items():
            self.work[agent] = wk.parse_mode(value)
            if campaign:
                self.home[agent] = campaign
            else:
                self.home.pop(agent, None)

    def login_campaign(
        self, agent: str, assigned: tuple[int, ...], pick: Callable[[tuple[int, ...]], int]
    ) -> int:
        """The campaign an agent works after login: none for inbound-only agents; otherwise
        ``pick`` from their assigned campaigns, the one a supervisor put them on first."""
        if self.mode(agent) is WorkMode.INBOUND_ONLY:
            return 0
        home = self.home.get(agent)
        if home:
            assigned = (home, *(c for c in assigned if c != home))
        return pick(assigned)

    def assign(self, a: AgentState, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        """``queue.assign``: campaign, work and priority now; the record is told as an effect
        whose outcome is the reply (None: the reply comes later)."""
        e = self.engine
        agent = a.agent_id
        chosen = self._choose(agent, cmd)
        if isinstance(chosen, Reply):
            return chosen
        target, mode = chosen
        current = int(a.campaign) if a.campaign.isdigit() else 0
        if target is not None:
            self.home[agent] = target
        if mode is WorkMode.INBOUND_ONLY:
            if current:
                self._resume[agent] = current
            campaign = 0
        else:
            campaign = target or current or self.home.get(agent) or self._resume.get(agent, 0)
            self._resume.pop(agent, None)
        if mode is wk.DEFAULT:
            self.work.pop(agent, None)
        else:
            self.work[agent] = mode
        e.agents[agent] = dataclasses.replace(a, campaign=str(campaign) if campaign else "")
        e.live.agent(agent, e._agent_view(e.agents[agent]))
        log.info("agent %s: %s, campaign %s (by %s)", agent, mode.value, campaign, cmd.actor)
        if e.agents[agent].status is AgentStatus.READY:
            if campaign:
                e._dispatch(campaign)  # answered outbound calls first, as always
            if e.agents[agent].status is AgentStatus.READY:
                self.dispatch()
        where, data = self._described(agent, mode, campaign)
        text = f"agent {agent}: {where}, {mode.label}"
        e._later(functools.partial(self._save, fut, agent, mode, self.home.get(agent), text, data))
        return None

    def _described(
        self, agent: str, mode: WorkMode, campaign: int | None
    ) -> tuple[str, dict[str, Any]]:
        """Where an assignment puts the agent, in words, and the reply's data."""
        run = self.engine.campaigns.get(campaign or 0)
        where = f"campaign {run.config.name}" if run else "no campaign"
        data: dict[str, Any] = {
            "agent": agent,
            "campaign": campaign or None,
            "campaign_name": run.config.name if run else None,
            "work": mode.value,
            "work_label": mode.label,
        }
        return where, data

    def _choose(self, agent: str, cmd: Command) -> tuple[int | None, WorkMode] | Reply:
        """``queue.assign``'s arguments checked: the campaign asked for (if any) and the new
        work mode, or the refusal."""
        key = str(cmd.args.get("campaign") or cmd.args.get("target") or "").strip()
        work = _opt(cmd.args.get("work"))
        priority = _opt(cmd.args.get("priority"))
        if not key and work is None and priority is None:
            return cmds.error(
                cmds.BAD_ARGUMENTS, "queue.assign: give a campaign, a kind of work or a priority"
            )
        target: int | None = None
        if key:
            target = self.engine._campaign_key(key)
            if target is None:
                return cmds.error(
                    cmds.UNKNOWN_CAMPAIGN,
                    f"no campaign {key} in the controller (start it first: dialer campaign start)",
                )
        try:
            mode = wk.choose(self.mode(agent), work=work, priority=priority, campaign=bool(key))
        except wk.WorkError as exc:
            return cmds.error(cmds.BAD_ARGUMENTS, str(exc))
        return target, mode

    def assign_ahead(self, agent: str, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        """``queue.assign`` for an agent who is not logged in: checked as for one who is, kept
        in the record, used at their next login (the reply comes once the record answers)."""
        if not agent:
            return cmds.error(cmds.BAD_ARGUMENTS, "queue.assign: which agent?")
        chosen = self._choose(agent, cmd)
        if isinstance(chosen, Reply):
            return chosen
        target, mode = chosen
        campaign = None if mode is WorkMode.INBOUND_ONLY else (target or self.home.get(agent))
        where, data = self._described(agent, mode, campaign)
        text = f"agent {agent} is not logged in: {where}, {mode.label} from their next login"
        data["logged_in"] = False
        log.info(
            "agent %s (not in): %s, campaign %s (by %s)", agent, mode.value, campaign, cmd.actor
        )
        self.engine._later(
            functools.partial(self._save, fut, agent, mode, campaign, text, data, ahead=True)
        )
        return None

    def _kept(self, item: WorkKeptIn) -> None:
        self.load_work({item.agent: (item.work.value, item.campaign)})

    async def _save(
        self,
        fut: asyncio.Future[Reply],
        agent: str,
        mode: WorkMode,
        campaign: int | None,
        text: str,
        data: dict[str, Any],
        *,
        ahead: bool = False,
    ) -> None:
        """Keep the assignment in the record; the outcome is the command's reply.  ``ahead``:
        the agent is not logged in, so the record is what makes it happen (at their login)."""
        try:
            await self.engine.store.save_agent_work(agent, mode.value, campaign)
        except Exception as exc:  # a failed effect becomes the reply, not just a log line
            if ahead and isinstance(exc, LookupError):
                message = f"no agent {agent} in the record"
                self.engine.post(ActionDoneIn(fut, False, message, code=cmds.UNKNOWN_AGENT))
                return
            log.warning("inbound: work of agent %s not saved: %s", agent, exc)
            why = f"{type(exc).__name__}: {exc}"
            failed = {**data, "saved": False}
            said = f"{text}: not saved ({why})" if ahead else f"{text} now, but not saved ({why})"
            self.engine.post(ActionDoneIn(fut, False, said, failed))
            return
        if ahead:
            self.engine.post(WorkKeptIn(agent, mode, campaign))
        self.engine.post(ActionDoneIn(fut, True, f"{text} (saved)", {**data, "saved": True}))

    def pause(self, queue: str, paused: bool) -> None:
        """``queue.pause`` / ``queue.resume``: callers already waiting stay in line either way."""
        if paused:
            self.paused.add(queue)
        else:
            self.paused.discard(queue)
        log.info("inbound queue %s %s", queue, "paused" if paused else "resumed")

    def is_open(self, queue: str) -> bool:
        """False while the queue is paused (see QueueDesk.is_open)."""
        return queue not in self.paused

    def can_serve(self, skill: str | None) -> bool:
        """Some logged-in agent could take such a caller (see QueueDesk.can_serve)."""
        logged = [
            a
            for a in self.engine.agents.values()
            if a.logged_in and self.mode(a.agent_id).takes_inbound
        ]
        if skill is None or self.queue.skill_relax_seconds is not None:
            return bool(logged)
        return any(skill in self.skills.get(a.agent_id, frozenset()) for a in logged)

    def figures(self) -> dict[str, Any]:
        """The queue's figures as plain data (wallboard, reports)."""
        return dataclasses.asdict(self.queue.figures(self.engine.clock.now()))

    # -- internals

    def _learn_skills(self) -> None:
        # Skills are looked up once per agent, as an effect whose result comes back as an
        # input (the single writer never awaits).
        if self.skills_loader is None:
            return
        for a in self.engine.agents.values():
            if a.logged_in and a.agent_id not in self.skills and a.agent_id not in self._loading:
                self._loading.add(a.agent_id)
                self.engine._later(functools.partial(self._load_skills, a.agent_id))

    async def _load_skills(self, agent: str) -> None:
        assert self.skills_loader is not None
        try:
            skills = await self.skills_loader(agent)
        except Exception as exc:  # a failed effect becomes an input, not just a log line
            log.warning("inbound: skills of agent %s not loaded: %s", agent, exc)
            skills = frozenset()
        self.engine.post(AgentSkillsIn(agent, frozenset(skills)))

    def _publish(self) -> None:
        # The wallboard's queue row ("Replace one campaign's (or queue's) counters"), at most
        # four times a second; dispatch runs on every tick, so the figures stay current.
        now = time.monotonic()
        if now - self._published < PUBLISH_EVERY:
            return
        self._published = now
        data = self.figures()
        data["kind"] = "inbound_queue"  # the wallboard's "Inbound queues" table reads this row
        data["name"] = "inbound"
        data["hold_outbound"] = self.hold_outbound(self.engine.clock.now())
        self.engine.live.counters(LIVE_KEY, data)

    def _reserved_for(self, agent: str, call_id: str) -> bool:
        a = self.engine.agents.get(agent)
        return a is not None and a.status is AgentStatus.RESERVED and a.call_id == call_id

    def _leave(self, item: InboundLeaveIn) -> None:
        handing = {m.caller.call_id: m for m in self.queue.handing()}
        match = handing.get(item.call_id)
        self.queue.leave(item.call_id, self.engine.clock.now(), item.reason)
        self.tickets.pop(item.call_id, None)
        if match is not None and self._reserved_for(match.agent.agent_id, item.call_id):
            self.engine._agent_event(match.agent.agent_id, AgentEvent.RELEASE)

    def _connected(self, item: InboundConnectedIn) -> None:
        self.queue.connected(item.call_id, item.at)
        self.tickets.pop(item.call_id, None)
        if self._reserved_for(item.agent, item.call_id):
            self.engine._agent_event(item.agent, AgentEvent.CONNECT, call_id=item.call_id)

    def _requeue(self, item: InboundRequeueIn) -> None:
        self.queue.requeue(item.call_id)
        if self._reserved_for(item.agent, item.call_id):
            if item.result.upper() == "NONEXISTENT":
                self.engine._logout(item.agent, "line gone")  # as for outbound (trace 31)
            else:
                self.engine._agent_event(item.agent, AgentEvent.RELEASE)
        self.dispatch()


# --------------------------------------------------------------------------- the IVR's side


class EngineTicket:
    """A caller's place in the engine's queue, seen from the caller's FastAGI task."""

    def __init__(self, desk: EngineDesk, caller: QueuedCaller) -> None:
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
        """1-based place in line (0 once an agent is offered)."""
        if self.offer is not None:
            return 0
        queue = self._desk.engine.inbound.queue
        if self.call_id not in queue:  # the join input is not applied yet
            return len(queue) + 1
        return queue.position(self.call_id)

    async def wait_offer(self, timeout: float | None) -> AgentOffer | None:  # noqa: ASYNC109
        """An agent for this caller, or None after ``timeout`` seconds."""
        if self.offer is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        return self.offer

    def connected(self, at: float) -> None:
        """The bridge formed."""
        assert self.offer is not None, "connected() without an offer"
        self.done = True
        self._desk.engine.post(InboundConnectedIn(self.call_id, self.offer.agent_id, at))

    def requeue(self, result: str = "FAILURE") -> None:
        """The agent could not be reached: back in line (``result`` decides the agent's fate)."""
        assert self.offer is not None, "requeue() without an offer"
        agent, self.offer = self.offer.agent_id, None
        self._event.clear()
        self._desk.engine.post(InboundRequeueIn(self.call_id, agent, result))

    def leave(self, reason: LeaveReason) -> bool:
        """Leave without an agent; False while an agent is offered (unless hanging up)."""
        if self.done:
            return True
        if self.offer is not None and reason is not LeaveReason.ABANDONED:
            return False
        self.done = True
        self._desk.engine.post(InboundLeaveIn(self.call_id, reason))
        return True

    def _give(self, offer: AgentOffer) -> None:
        if self.done:
            return  # the caller already left; the engine settles the agent on their input
        self.offer = offer
        self._event.set()


class EngineDesk:
    """The IVR's :class:`~dialer.agi_scripts.inbound_desk.QueueDesk` in ``dialer run``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def join(self, caller: QueuedCaller) -> EngineTicket:
        """Post the caller to the engine's queue."""
        ticket = EngineTicket(self, caller)
        self.engine.post(InboundJoinIn(caller, ticket))
        return ticket

    def can_serve(self, skill: str | None) -> bool:
        """Read from the engine's state (reads need no input: one event loop)."""
        return self.engine.inbound.can_serve(skill)

    def is_open(self, queue: str) -> bool:
        """Read from the engine's state: not paused by ``queue.pause``."""
        return self.engine.inbound.is_open(queue)

    def now(self) -> float:
        """The engine's clock."""
        return self.engine.clock.now()

    def real(self, seconds: float) -> float:
        """Real seconds for a duration on the engine's (possibly scaled) clock."""
        return self.engine.clock.real(seconds)


def _opt(value: object) -> str | None:
    """An optional text argument: None when absent or empty."""
    text = str(value).strip() if value is not None else ""
    return text or None
