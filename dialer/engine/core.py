"""The single writer: one task applies every input to agent and call state, then runs effects.

Inputs (``dialer.engine.inputs``) come from one ``asyncio.Queue``: AMI events, FastAGI requests,
commands, ticks and the results of earlier effects.  ``_apply`` is synchronous: a transition
never awaits, so no two inputs ever interleave.  What a transition wants done outside (an AMI
action, a database write, a timer) is queued as an effect and started after the transition;
an effect's outcome comes back as another input, and a failed effect becomes an input too,
never just a log line.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from dialer.config import Settings, TrunkSettings
from dialer.domain import agent as ag
from dialer.domain.agent import AgentEvent, AgentState, AgentStatus, IllegalTransition
from dialer.domain.call import CallEvent, CallPhase, CallState, advance
from dialer.domain.results import (
    CallFacts,
    CallResult,
    amd_is_live,
    cause_leg,
    classify,
    normalise_amd_status,
    pacer_reason,
    pick_cause,
)
from dialer.engine import commands as cmds
from dialer.engine.agent_dial import AgentDial
from dialer.engine.agent_table import AgentTable
from dialer.engine.commands import Command, Reply
from dialer.engine.inbound import EngineInbound
from dialer.engine.inputs import (
    ActionDoneIn,
    AmiEvent,
    AmiLink,
    BarrierIn,
    BridgeResultIn,
    CampaignIn,
    CommandIn,
    HandoffIn,
    HandoffPlan,
    HistoryIn,
    LeadsIn,
    LoginIn,
    OriginateIn,
    RecheckIn,
    ReconcileIn,
    RecoverIn,
    StopIn,
    Tick,
    TimerIn,
    WrapupStartIn,
)
from dialer.engine.ports import (
    AgentLogRecord,
    AmiPort,
    CallOutcome,
    CallProgress,
    CallStarted,
    CampaignConfig,
    Clock,
    DispositionRecord,
    LeadTicket,
    RealClock,
    Store,
)
from dialer.engine.trunks import InboundTrunkCalls, TrunkGate, dial_string, inbound_channel
from dialer.pacing.ledger import BUCKET_SECONDS
from dialer.protocol.ami import Message

log = logging.getLogger("dialer.engine")

S = AgentStatus
Effect = Callable[[], Awaitable[object] | None]

# The abandonment message must *start* inside the limit: give up this much before it.
ABANDON_MARGIN = 0.15
# Unanswered calls: wait this long after the last channel's Hangup for the other leg's cause.
FINALIZE_GRACE = 0.3
# Keep this many leads reserved ahead per ready agent (the hopper is a database round trip).
BUFFER_PER_AGENT = 3
BUFFER_MIN = 4
# A call that hears nothing for this long (beyond its ring timeout) is checked against Asterisk.
STALE_AFTER = 60.0
# Reconciliation leaves alone a call heard of this recently before the channel listing.
RECONCILE_MARGIN = 5.0
# Stale calls ask for a channel listing at most this often (engine seconds).  Each listing is
# one list event per channel, on both sides of the link (about 1,000 with 500 agents), and
# every call still up 60 s after its ring timeout (a long conversation) asks for one: without
# the spacing, at 500 agents the controller listed channels more than once a second and each
# burst held up the hand-offs queued behind it.
RECONCILE_EVERY = 10.0
RECONCILE_KEY = "__reconcile__"  # the "stale" timer of a listing put off (or to retry)


class _Live:
    """Publishes nothing (when no live state is wired)."""

    def agent(self, agent_id: str, data: Mapping[str, Any] | None) -> None:
        """Ignore."""

    def call(self, call_id: str, data: Mapping[str, Any] | None) -> None:
        """Ignore."""

    def counters(self, campaign: str, data: Mapping[str, Any]) -> None:
        """Ignore."""

    def event(self, data: Mapping[str, Any]) -> None:
        """Ignore."""

    def reset(self) -> None:
        """Ignore."""


@dataclass(slots=True)
class CallTrack:
    """One call in flight: its state machine value plus the facts Asterisk reported."""

    state: CallState
    trunk: str
    dial: str
    originated: bool = False  # Originate accepted (or unknown: maybe)
    channel: str = ""  # ;1 channel name
    seen_channel: bool = False
    originate_reason: int | None = None
    originate_failed: bool = False
    dial_status: str | None = None
    self_cause: int | None = None
    other_cause: int | None = None
    self_cause_txt: str = ""
    other_cause_txt: str = ""
    amd_status: str = ""
    amd_cause: str = ""
    live: bool | None = None
    classified: bool = False  # pacer told answered/unanswered
    connected: bool = False
    abandoned: bool = False
    link_lost: bool = False
    plan: asyncio.Future[HandoffPlan] | None = None
    deadline: float = 0.0
    live_perf: float = 0.0
    handoff_ms: float | None = None
    reserved_perf: float = 0.0  # an agent was reserved for it (at once, or once one freed up)
    asked_perf: float = 0.0  # the FastAGI session asked for its plan
    offered_perf: float = 0.0  # the plan (an agent) was handed to it
    customer_bridge: str = ""
    agent_bridge: str = ""
    finalizing: bool = False
    hung_up: bool = False
    last_news: float = 0.0
    record_path: str = ""
    orphan: bool = False  # from a previous run (restart recovery)


@dataclass(slots=True)
class CampaignRun:
    """A running campaign: its config, today's pacer, its lead buffer and counters."""

    config: CampaignConfig
    pacer: Any = None
    day: str = ""
    buffer: deque[LeadTicket] = field(default_factory=deque)
    fetching: bool = False
    exhausted_until: float = 0.0
    counters: dict[str, float] = field(default_factory=dict)
    last_decision: int = 0
    fetch_failed: bool = False
    rechecking: int = 0  # launches decided, waiting for the last look before the Originate
    # The ledger's earlier live answers (pacing LedgerBuckets on our clock); None until read:
    # a campaign is not paced before its abandonment history is known.
    history: tuple[Any, ...] | None = None


@dataclass(slots=True)
class Stats:
    """Figures the engine keeps for the wallboard, the demo summary and the benchmarks."""

    # per hand-off, ms from "a live person and a free agent" to both in the bridge
    handoff_ms: list[float] = field(default_factory=list)
    # per hand-off, ms the live person waited for an agent to be free (0: one was ready)
    agent_wait_ms: list[float] = field(default_factory=list)
    # per hand-off: (verdict -> FastAGI asks, asks -> agent given, given -> both in bridge) ms
    handoff_parts: list[tuple[float, float, float]] = field(default_factory=list)
    applied: int = 0
    originated: int = 0
    ended: int = 0
    links: int = 0  # AMI logins seen (1 + reconnects)
    not_sent: int = 0  # launches whose Originate never left (link down): ledger says failed
    unknown_sent: int = 0  # Originates whose answer the link lost: reconciliation decides
    reconciled: int = 0  # reconciliations done


def _percentile(values: list[float], q: float) -> float | None:
    """The q-quantile of the last 1,000 values (None when there are none)."""
    if not values:
        return None
    recent = sorted(values[-1000:])
    return recent[min(len(recent) - 1, int(q * len(recent)))]


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class Engine:
    """The controller's single writer of agent and call state."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        ami: AmiPort,
        *,
        live: Any = None,
        clock: Clock | None = None,
        pacing: ModuleType | None = None,
        owner: str = "",
    ) -> None:
        self.settings = settings
        self.store = store
        self.ami = ami
        self.live = live if live is not None else _Live()
        self.clock: Clock = clock if clock is not None else RealClock()
        self._pacing = pacing
        self.owner = owner or f"ctl-{secrets.token_hex(3)}"
        # Indexed by campaign, READY and wrap-up: no per-event or per-tick scan of every agent.
        self.agents: AgentTable = AgentTable()
        self.seats: dict[str, str] = {}  # agent -> seat
        self.by_channel: dict[str, str] = {}  # agent channel -> agent
        self.calls: dict[str, CallTrack] = {}
        self.by_other: dict[str, str] = {}  # OtherChannelId -> call id
        self.campaigns: dict[int, CampaignRun] = {}
        self.waiting: dict[int, deque[str]] = {}
        self.trunks: dict[str, TrunkGate] = {t.name: TrunkGate(t) for t in settings.asterisk.trunks}
        # Inbound calls hold channels of the trunk they came in on (issue 8: limits shared).
        self.trunk_inbound = InboundTrunkCalls(self.trunks)
        self.leads_in_flight: set[int] = set()
        self.stats = Stats()
        self.running = False
        self.stopping = False
        self.ami_up = False
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._effects: list[Effect] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._ever_up = False
        self._seq = 0
        self._last_publish = 0.0
        self._stop_deadline = 0.0
        self._done: asyncio.Event = asyncio.Event()
        self._wrapup_grace = 5.0
        self._reconciling = False
        self._reconcile_asked = float("-inf")  # engine time of the last full listing asked
        self._watchers: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        # Lead ids of calls already ended, kept while their agent wraps up.
        self._ended_leads: dict[str, int] = {}
        # inbound (issue 10): the IVR callers' queue lives here, in the single writer.
        self.inbound = EngineInbound(self)
        # preview/manual (issue 8): agents dial for themselves with *3.
        self.agent_dial = AgentDial(self)

    # ------------------------------------------------------------------ public surface

    def post(self, item: object) -> None:
        """Put an input on the queue (from any task of this event loop; never blocks)."""
        self._queue.put_nowait(item)

    async def submit(self, cmd: Command) -> Reply:
        """Apply a command through the single writer and return its reply."""
        bad = cmds.validate(cmd)
        if bad is not None:
            return bad
        if self._done.is_set():
            return cmds.error(cmds.ENGINE_STOPPED, "the engine is not running")
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.post(CommandIn(cmd, fut))
        return await fut

    async def ask(self, make: Callable[[asyncio.Future[Any]], object]) -> Any:
        """Post an input built around a fresh future, and await that future."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.post(make(fut))
        return await fut

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds after some input was applied (TimeoutError if not)."""
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._watchers.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            if entry in self._watchers:
                self._watchers.remove(entry)

    def _check_watchers(self) -> None:
        for predicate, fut in list(self._watchers):
            if fut.done():
                continue
            try:
                if predicate():
                    fut.set_result(None)
            except Exception as exc:
                fut.set_exception(exc)

    def idle(self, campaign_id: int) -> bool:
        """Nothing left to do for a campaign now: no lead buffered or dialable, no call up."""
        run = self.campaigns.get(campaign_id)
        if run is None:
            return True
        busy = any(c.state.campaign == str(campaign_id) for c in self.calls.values())
        dry = (
            not run.buffer
            and not run.fetching
            and not run.fetch_failed
            and run.exhausted_until > self.clock.now()
        )
        return dry and not busy

    async def barrier(self) -> None:
        """Return once every input posted before this call has been applied."""
        await self.ask(BarrierIn)

    def on_ami_event(self, msg: Message) -> None:
        """AMI subscription hook: every event goes on the queue."""
        self._queue.put_nowait(AmiEvent(msg))

    async def run(self) -> None:
        """The single writer's loop, until ``stop`` completes."""
        self.running = True
        ticker = asyncio.create_task(self._ticker(), name="engine-ticker")
        try:
            while True:
                item = await self._queue.get()
                self.stats.applied += 1
                try:
                    self._apply(item)
                except Exception:  # a bug in one transition must not stop the dialer
                    log.exception("engine: applying %s failed", type(item).__name__)
                self._run_effects()
                if self._watchers:
                    self._check_watchers()
                if self.stopping and self._drained():
                    self._settle_wrapups()
                    self._run_effects()
                    break
        finally:
            ticker.cancel()
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            self._fail_pending()
            self.running = False
            self._done.set()
            if self._tasks:
                # Effects already started (lead releases, ledger rows) get a moment to finish.
                await asyncio.wait(list(self._tasks), timeout=2.0)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            try:
                await self.store.flush()
            except Exception:
                log.exception("engine: final flush failed")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop launching, give calls in flight ``grace`` real seconds, then end the loop."""
        if not self.running:
            return
        self.post(StopIn(grace))
        await self._done.wait()

    # ------------------------------------------------------------------ the loop's helpers

    async def _ticker(self) -> None:
        interval = max(self.clock.real(self.settings.engine.tick_interval), 0.05)
        interval = min(interval, self.settings.engine.tick_interval)
        while True:
            await asyncio.sleep(interval)
            self._queue.put_nowait(Tick())

    def _run_effects(self) -> None:
        effects, self._effects = self._effects, []
        for effect in effects:
            try:
                result = effect()
            except Exception:
                log.exception("engine: effect failed")
                continue
            if result is not None and asyncio.iscoroutine(result):
                task: asyncio.Task[object] = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _later(self, effect: Effect) -> None:
        self._effects.append(effect)

    def _timer(self, kind: str, key: str, at: float) -> None:
        """Post ``TimerIn(kind, key)`` when the engine clock reaches ``at``."""
        self._cancel_timer(kind, key)
        delay = self.clock.real(at - self.clock.now())
        loop = asyncio.get_running_loop()
        self._timers[(kind, key)] = loop.call_later(delay, self._fire, kind, key)

    def _fire(self, kind: str, key: str) -> None:
        self._timers.pop((kind, key), None)
        self._queue.put_nowait(TimerIn(kind, key))

    def _cancel_timer(self, kind: str, key: str) -> None:
        handle = self._timers.pop((kind, key), None)
        if handle is not None:
            handle.cancel()

    def _settle_wrapups(self) -> None:
        """At shutdown no wrap-up session will finish: record the default dispositions."""
        for a in list(self.agents.values()):
            if a.status is S.WRAPUP:
                self._write_disposition(a, None, default=True)
                self._agent_event(a.agent_id, AgentEvent.WRAPUP_DONE)

    def _drained(self) -> bool:
        active = [c for c in self.calls.values() if c.state.phase is not CallPhase.ENDED]
        return not active or self.clock.now() >= self._stop_deadline

    def _fail_pending(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            fut = getattr(item, "reply", None)
            if isinstance(fut, asyncio.Future) and not fut.done():
                if isinstance(item, HandoffIn | BridgeResultIn):
                    fut.set_result(HandoffPlan("abandon", prompt=self._abandon_prompt(None)))
                else:
                    fut.set_result(cmds.error(cmds.ENGINE_STOPPED, "the engine stopped"))
        for call in self.calls.values():
            if call.plan is not None and not call.plan.done():
                call.plan.set_result(HandoffPlan("abandon", prompt=self._abandon_prompt(None)))

    @property
    def pacing(self) -> ModuleType:
        """The pacing module (``dialer.pacing`` unless a test gave another)."""
        if self._pacing is None:
            self._pacing = importlib.import_module("dialer.pacing")
        return self._pacing

    # ------------------------------------------------------------------ dispatch

    def _apply(self, item: object) -> None:
        if isinstance(item, AmiEvent):
            self._on_ami(item.msg)
        elif isinstance(item, Tick):
            self._on_tick()
        elif isinstance(item, HandoffIn):
            self._on_handoff(item)
        elif isinstance(item, BridgeResultIn):
            self._on_bridge_result(item)
        elif isinstance(item, CommandIn):
            self._on_command(item)
        elif isinstance(item, LoginIn):
            self._on_login(item)
        elif isinstance(item, WrapupStartIn):
            self._on_wrapup_start(item)
        elif isinstance(item, TimerIn):
            self._on_timer(item)
        elif isinstance(item, OriginateIn):
            self._on_originate(item)
        elif isinstance(item, LeadsIn):
            self._on_leads(item)
        elif isinstance(item, RecheckIn):
            self._on_recheck(item)
        elif isinstance(item, AmiLink):
            self._on_link(item.up)
        elif isinstance(item, ReconcileIn):
            self._on_reconcile(item)
        elif isinstance(item, CampaignIn):
            self._on_campaign(item)
        elif isinstance(item, RecoverIn):
            self._on_recover(item)
        elif isinstance(item, HistoryIn):
            self._on_history(item)
        elif isinstance(item, ActionDoneIn):
            if item.reply is not None and not item.reply.done():
                code = item.code or (cmds.OK if item.ok else cmds.FAILED)
                item.reply.set_result(Reply(item.ok, code, item.message, item.data))
        elif isinstance(item, BarrierIn):
            if not item.reply.done():
                item.reply.set_result(None)
        elif isinstance(item, StopIn):
            self.stopping = True
            self._stop_deadline = self.clock.now() + item.grace * getattr(self.clock, "speed", 1)
            for run in self.campaigns.values():
                self._release_buffer(run)
        elif self.inbound.apply(item):  # inbound (issue 10): join/leave/connected/requeue
            pass
        elif self.agent_dial.apply(item):  # preview/manual (issue 8): *3
            pass
        else:
            log.warning("engine: unknown input %r", item)

    # ------------------------------------------------------------------ agents

    def _agent_event(
        self,
        agent_id: str,
        event: AgentEvent,
        *,
        reason: str = "",
        call_id: str = "",
        channel: str = "",
        campaign: str = "",
    ) -> AgentState:
        """Apply one agent event (raises IllegalTransition), log it, publish, pace."""
        now = self.clock.now()
        before = self.agents.get(agent_id) or AgentState(agent_id)
        after, record = ag.apply(
            before, event, now, reason=reason, call_id=call_id, channel=channel, campaign=campaign
        )
        self.agents[agent_id] = after
        if before.channel and before.channel != after.channel:
            self.by_channel.pop(before.channel, None)
        if after.channel:
            self.by_channel[after.channel] = agent_id
        log.info(
            "agent %s: %s -> %s (%s%s)",
            agent_id,
            record.from_status.value,
            record.to_status.value,
            event.value,
            f", {reason}" if reason else "",
        )
        self._log_agent(after, record, before)
        self._pace_agent(before, after, now)
        self._account(before, now)
        self.live.agent(agent_id, None if not after.logged_in else self._agent_view(after))
        if after.status is S.READY and after.campaign:
            self._dispatch(_int(after.campaign) or 0)
        if self.agents[agent_id].status is S.READY:
            # inbound (issue 10): still free after the answered outbound calls, so waiting
            # inbound callers get this agent before the pacer may launch a call for them.
            self.inbound.dispatch()
        return after

    def _account(self, before: AgentState, now: float) -> None:
        """Add the time just spent in ``before.status`` to the campaign's occupancy figures."""
        run = self.campaigns.get(_int(before.campaign) or -1)
        if run is None or not before.logged_in or before.status is S.PAUSED:
            return
        spent = max(0.0, now - before.since)
        run.counters["available_seconds"] = run.counters.get("available_seconds", 0.0) + spent
        if before.status is not S.READY:
            run.counters["busy_seconds"] = run.counters.get("busy_seconds", 0.0) + spent

    def _log_agent(self, after: AgentState, record: ag.Transition, before: AgentState) -> None:
        campaign = _int(after.campaign or before.campaign)
        row = AgentLogRecord(
            event_id=uuid.uuid4().hex,
            agent_number=record.agent_id,
            state=record.to_status.value,
            reason=record.reason or record.event.value,
            seat=self.seats.get(record.agent_id, ""),
            campaign_id=campaign,
            call_id=record.call_id or None,
            at=_now_utc(),
        )
        self._later(lambda: self.store.agent_log(row))

    def _pace_agent(self, before: AgentState, after: AgentState, now: float) -> None:
        run = self.campaigns.get(_int(before.campaign) or -1)
        if run is None or run.pacer is None:
            return
        p = self.pacing
        if before.status is S.TALKING and after.status is not S.TALKING:
            run.pacer.observe(p.TalkEnded(at=now, talk_seconds=max(0.0, now - before.since)))
        if before.status is S.WRAPUP and after.status is not S.WRAPUP:
            run.pacer.observe(p.WrapEnded(at=now, wrap_seconds=max(0.0, now - before.since)))

    def _agent_view(self, a: AgentState) -> dict[str, Any]:
        return {
            "agent": a.agent_id,
            "state": a.status.value,
            "reason": a.reason,
            "since": a.since,
            "call": a.call_id,
            "campaign": a.campaign,
            "seat": self.seats.get(a.agent_id, ""),
            "channel": a.channel,
            "work": self.inbound.mode(a.agent_id).value,  # issue 9: queue assign
        }

    def _on_login(self, item: LoginIn) -> None:
        current = self.agents.get(item.agent)
        if current is not None and current.logged_in:
            # The same person logs in again (a new seat, or a line we did not see drop):
            # the newest line wins; the old one is logged out and hung up.
            old = current.channel
            self._logout(item.agent, "relogin")
            if old and old != item.channel:
                self._later(lambda: self._hangup_channel(old))
        # issue 9: the campaign a supervisor assigned first; none for inbound-only agents
        campaign = self.inbound.login_campaign(item.agent, item.campaign_ids, self._pick_campaign)
        self.seats[item.agent] = item.seat
        event = AgentEvent.LOGIN_PAUSED if item.paused else AgentEvent.LOGIN
        state = self._agent_event(
            item.agent,
            event,
            reason="login" if item.paused else "",
            channel=item.channel,
            campaign=str(campaign) if campaign else "",
        )
        if not item.reply.done():
            item.reply.set_result(cmds.ok("logged in", state=state.status.value, campaign=campaign))

    def _pick_campaign(self, assigned: Iterable[int]) -> int:
        assigned = tuple(assigned)
        for cid in assigned:
            run = self.campaigns.get(cid)
            if run is not None and run.config.status == "running":
                return cid
        if assigned:
            return assigned[0]
        running = [cid for cid, r in self.campaigns.items() if r.config.status == "running"]
        return min(running) if running else 0

    def _logout(self, agent_id: str, reason: str) -> None:
        """Log an agent out from any state, settling what they were doing."""
        a = self.agents.get(agent_id)
        if a is None or not a.logged_in:
            return
        call = self.calls.get(a.call_id) if a.call_id else None
        if a.status in (S.TALKING, S.WRAPUP):
            # Logged out (or the line dropped) before a disposition: the default one.
            self._write_disposition(a, call, default=True)
        self._agent_event(agent_id, AgentEvent.LOGOUT, reason=reason)
        self.agent_dial.drop(agent_id)  # preview/manual (issue 8): a lead taken, not dialled
        if call is not None and a.status is S.RESERVED:
            call.state = replace(call.state, agent_id="")
            self._requeue(call)

    def _on_wrapup_start(self, item: WrapupStartIn) -> None:
        a = self.agents.get(item.agent)
        if a is None or not a.logged_in:
            item.reply.set_result(cmds.error(cmds.NOT_LOGGED_IN, f"agent {item.agent} is not in"))
            return
        if a.status is S.TALKING:
            self._agent_event(item.agent, AgentEvent.CALL_END)
            a = self.agents[item.agent]
        if a.status is not S.WRAPUP:
            item.reply.set_result(cmds.error(cmds.ILLEGAL_TRANSITION, f"agent is {a.status}"))
            return
        run = self.campaigns.get(_int(a.campaign) or -1)
        secs = run.config.wrapup_seconds if run else self.settings.engine.wrapup_seconds
        codes = [d.code for d in run.config.dispositions] if run else []
        item.reply.set_result(cmds.ok("wrap-up", wrapup_seconds=secs, codes=codes))

    def _write_disposition(
        self, a: AgentState, call: CallTrack | None, *, default: bool, code: str = ""
    ) -> None:
        run = self.campaigns.get(_int(a.campaign) or -1)
        config = run.config if run else None
        if call is None and a.call_id:
            call = self.calls.get(a.call_id)
        lead_id = call.state.lead_id if call else self._ended_leads.get(a.call_id, 0)
        if not a.call_id:
            return
        chosen = config.disposition(code) if (config and code) else None
        final_code = code if chosen else (config.default_disposition if config else "none")
        now = _now_utc()
        callback_at = None
        if chosen is not None and chosen.callback_minutes is not None:
            callback_at = now + timedelta(minutes=chosen.callback_minutes)
        row = DispositionRecord(
            call_id=a.call_id,
            campaign_id=config.id if config else (_int(a.campaign) or 0),
            lead_id=lead_id,
            agent_number=a.agent_id,
            code=final_code,
            at=now,
            wrap_seconds=max(0.0, self.clock.now() - a.since) if a.status is S.WRAPUP else 0.0,
            callback_at=callback_at,
            final=bool(chosen and chosen.final),
            dnc=bool(chosen and chosen.dnc),
        )
        self._later(lambda: self.store.disposition(row))

    # ------------------------------------------------------------------ commands

    def _on_command(self, item: CommandIn) -> None:
        cmd = item.cmd
        handler = getattr(self, "_cmd_" + cmd.name.replace(".", "_"), None)
        if handler is None:
            reply: Reply | None = cmds.error(cmds.UNKNOWN_COMMAND, f"unknown command {cmd.name}")
        else:
            try:
                reply = handler(cmd, item.reply)
            except IllegalTransition as exc:
                reply = cmds.error(cmds.ILLEGAL_TRANSITION, str(exc))
        if reply is not None and not item.reply.done():
            item.reply.set_result(reply)

    def _agent_for(self, cmd: Command) -> tuple[AgentState | None, Reply | None]:
        agent_id = str(cmd.args.get("agent", ""))
        a = self.agents.get(agent_id)
        if a is None:
            if self._known_agent(agent_id):
                return None, cmds.error(cmds.NOT_LOGGED_IN, f"agent {agent_id} is not logged in")
            return None, cmds.error(cmds.UNKNOWN_AGENT, f"no agent {agent_id} has logged in")
        if not a.logged_in:
            return None, cmds.error(cmds.NOT_LOGGED_IN, f"agent {agent_id} is not logged in")
        return a, None

    def _known_agent(self, agent_id: str) -> bool:
        return agent_id in self.agents

    def _cmd_agent_pause(self, cmd: Command, _f: object) -> Reply:
        a, err = self._agent_for(cmd)
        if a is None:
            assert err is not None
            return err
        reason = str(cmd.args.get("reason") or "break")
        after = self._agent_event(a.agent_id, AgentEvent.PAUSE, reason=reason)
        return cmds.ok(f"agent {a.agent_id} paused ({reason})", state=after.status.value)

    def _cmd_agent_unpause(self, cmd: Command, _f: object) -> Reply:
        a, err = self._agent_for(cmd)
        if a is None:
            assert err is not None
            return err
        after = self._agent_event(a.agent_id, AgentEvent.UNPAUSE)
        return cmds.ok(f"agent {a.agent_id} ready", state=after.status.value)

    def _cmd_agent_logout(self, cmd: Command, _f: object) -> Reply:
        a, err = self._agent_for(cmd)
        if a is None:
            assert err is not None
            return err
        channel = a.channel
        self._logout(a.agent_id, "phone" if cmd.actor == "phone" else f"by {cmd.actor}")
        if cmd.actor != "phone" and channel:
            # A supervisor logs someone out: their nailed-up line is hung up too.
            self._later(lambda: self._hangup_channel(channel))
        return cmds.ok(f"agent {a.agent_id} logged out", state=S.LOGGED_OUT.value)

    def _cmd_agent_disposition(self, cmd: Command, _f: object) -> Reply:
        a, err = self._agent_for(cmd)
        if a is None:
            assert err is not None
            return err
        code = str(cmd.args.get("code", "")).strip()
        if a.status is not S.WRAPUP:
            return cmds.error(cmds.ILLEGAL_TRANSITION, f"agent {a.agent_id} is {a.status.value}")
        run = self.campaigns.get(_int(a.campaign) or -1)
        default = code in ("", "default")
        if not default and (run is None or run.config.disposition(code) is None):
            return cmds.error(cmds.UNKNOWN_DISPOSITION, f"no disposition {code!r}")
        self._write_disposition(a, None, default=default, code="" if default else code)
        self._agent_event(a.agent_id, AgentEvent.WRAPUP_DONE)
        chosen = run.config.disposition(code) if (run and not default) else None
        name = chosen.name if chosen else "default"
        return cmds.ok(f"disposition {code or 'default'} ({name})", code=code, name=name)

    def _cmd_queue_assign(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        a, _ = self._agent_for(cmd)
        if a is None:
            # Not logged in (or not since this controller started): kept in the record for
            # their next login, if the record knows them.
            return self.inbound.assign_ahead(str(cmd.args.get("agent", "")), cmd, fut)
        return self.inbound.assign(a, cmd, fut)  # issue 9: campaign, work, blend priority

    def _cmd_agent_next(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        return self.agent_dial.next(cmd, fut)  # preview/manual (issue 8)

    def _cmd_agent_dial(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        return self.agent_dial.dial(cmd, fut)  # preview/manual (issue 8)

    def _cmd_queue_pause(self, cmd: Command, _f: object) -> Reply:
        return self._queue_switch(cmd, True)

    def _cmd_queue_resume(self, cmd: Command, _f: object) -> Reply:
        return self._queue_switch(cmd, False)

    def _queue_switch(self, cmd: Command, paused: bool) -> Reply:
        # inbound (issue 9): a paused queue sends new callers to the closed message.
        name = str(cmd.args.get("queue", "")).strip()
        if not name:
            return cmds.error(cmds.UNKNOWN_QUEUE, "no inbound queue named")
        self.inbound.pause(name, paused)
        state = "paused" if paused else "open"
        return cmds.ok(f"inbound queue {name} {state}", queue=name, state=state)

    def _campaign_key(self, key: str) -> int | None:
        for cid, run in self.campaigns.items():
            if key in (str(cid), run.config.name):
                return cid
        return None

    def _cmd_campaign_start(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        self._campaign_change(cmd, "running", fut)
        return None

    def _cmd_campaign_pause(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        self._campaign_change(cmd, "paused", fut)
        return None

    def _cmd_campaign_stop(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        self._campaign_change(cmd, "stopped", fut)
        return None

    def _cmd_campaign_reload(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        self._campaign_change(cmd, "", fut)
        return None

    def _campaign_change(self, cmd: Command, status: str, fut: asyncio.Future[Reply]) -> None:
        key = str(cmd.args["campaign"])

        async def load() -> None:
            try:
                config = await self.store.campaign(key)
                if config is not None and status:
                    await self.store.set_campaign_status(config.id, status)
                    config = replace(config, status=status)
                self.post(CampaignIn(key, config, status, fut))
            except Exception as exc:  # the failure is an input, not a log line
                self.post(ActionDoneIn(fut, False, f"campaign {key}: {exc}"))

        self._later(load)
        return None

    def _on_campaign(self, item: CampaignIn) -> None:
        reply: Reply
        if item.config is None:
            reply = cmds.error(cmds.UNKNOWN_CAMPAIGN, f"no campaign {item.key}")
        else:
            self.add_campaign(item.config)
            reply = cmds.ok(
                f"campaign {item.config.name} {item.config.status}",
                campaign=item.config.id,
                status=item.config.status,
            )
        if item.reply is not None and not item.reply.done():
            item.reply.set_result(reply)

    def add_campaign(self, config: CampaignConfig) -> None:
        """Install or update a campaign (its pacer survives a reload the same day)."""
        run = self.campaigns.get(config.id)
        if run is None:
            run = self.campaigns[config.id] = CampaignRun(config)
            self._later(functools.partial(self._load_history, config.id))
        else:
            run.config = config
        if config.status != "running":
            self._release_buffer(run)
            for call_id in self.waiting.get(config.id, ()):
                call = self.calls.get(call_id)
                if call is not None and call.plan is not None and not call.plan.done():
                    call.plan.set_result(HandoffPlan("abandon", prompt=self._abandon_prompt(run)))
        self._publish_counters(force=True)

    async def _load_history(self, cid: int) -> None:
        """Read the campaign's live answers of the last 30 days (an effect; result as input)."""
        try:
            answers = await self.store.live_answers(cid)
        except Exception as exc:
            # Better to pace on today's count alone than not at all; said loudly.
            log.warning(
                "campaign %s: abandonment history not read (%s): pacing without the earlier "
                "days' abandonments",
                cid,
                exc,
            )
            self.post(HistoryIn(cid, ()))
        else:
            self.post(HistoryIn(cid, tuple(answers)))

    def _on_history(self, item: HistoryIn) -> None:
        run = self.campaigns.get(item.campaign_id)
        if run is None or run.history is not None:
            return
        now = self.clock.now()
        size = BUCKET_SECONDS
        buckets: dict[float, list[int]] = {}
        for ago, abandoned in item.answers:
            start = ((now - ago) // size) * size
            counts = buckets.setdefault(start, [0, 0])
            counts[0] += 1
            counts[1] += int(abandoned)
        run.history = tuple(
            self.pacing.LedgerBucket(start, live, abandoned)
            for start, (live, abandoned) in sorted(buckets.items())
        )
        if item.answers:
            live = sum(b.live for b in run.history)
            dropped = sum(b.abandoned for b in run.history)
            log.info(
                "campaign %s: pacer starts from %d live answers, %d abandoned in 30 days",
                run.config.id,
                live,
                dropped,
            )

    def _cmd_status(self, cmd: Command, _f: object) -> Reply:
        by_state: dict[str, int] = {}
        for a in self.agents.values():
            if a.logged_in:
                by_state[a.status.value] = by_state.get(a.status.value, 0) + 1
        phases: dict[str, int] = {}
        for c in self.calls.values():
            phases[c.state.phase.value] = phases.get(c.state.phase.value, 0) + 1
        return cmds.ok(
            "status",
            agents={k: self._agent_view(v) for k, v in self.agents.items() if v.logged_in},
            agents_by_state=by_state,
            calls_by_phase=phases,
            campaigns={
                str(cid): {"name": r.config.name, "status": r.config.status, **r.counters}
                for cid, r in self.campaigns.items()
            },
            ami_connected=self.ami_up,
        )

    def _cmd_monitor(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        a, err = self._agent_for(cmd)
        if a is None:
            return err
        flag = {"listen": "", "whisper": "w", "barge": "B"}[str(cmd.args["mode"])]
        to = str(cmd.args["to"])
        headers = [
            ("Channel", f"PJSIP/{to}"),
            ("Application", "ChanSpy"),
            ("Data", f"{a.channel},q{flag}"),
            ("Async", "true"),
            ("CallerID", f"monitor {a.agent_id}"),
        ]
        self._later(lambda: self._action_for(fut, "Originate", headers))
        return None

    async def _action_for(
        self, fut: asyncio.Future[Reply], action: str, headers: list[tuple[str, str]]
    ) -> None:
        try:
            reply = await self.ami.send(action, headers)
            self.post(ActionDoneIn(fut, reply.ok, reply.message or action))
        except Exception as exc:
            self.post(ActionDoneIn(fut, False, f"{action}: {exc}"))

    async def _hangup_channel(self, channel: str) -> None:
        try:
            await self.ami.send("Hangup", [("Channel", channel), ("Cause", "16")])
        except Exception as exc:
            log.info("engine: hangup of %s failed: %s", channel, exc)

    # ------------------------------------------------------------------ pacing and launching

    def _on_tick(self) -> None:
        now = self.clock.now()
        self.inbound.dispatch()  # inbound (issue 10): skills relax as callers wait
        if not self.stopping:
            for cid, run in self.campaigns.items():
                if run.config.status == "running":
                    self._pace(cid, run, now)
        self._overdue_wrapups(now)
        self._publish_counters()

    def _pacer_for(self, run: CampaignRun) -> Any:
        """Today's pacer for the campaign: a fresh one each calendar day (campaign's zone)."""
        try:
            day = datetime.now(ZoneInfo(run.config.timezone)).date().isoformat()
        except Exception:
            day = datetime.now(UTC).date().isoformat()
        if run.pacer is None or run.day != day:
            # The rolling 24 h and 30 day windows go on: yesterday's pacer hands its ledger to
            # today's; the first pacer starts from the record (``run.history``).
            ledger = getattr(run.pacer, "ledger", None)
            history = ledger.buckets() if ledger is not None else (run.history or ())
            cfg = run.config
            mode = cfg.dial_mode if cfg.dial_mode in ("predictive", "progressive", "ratio") else ""
            if not mode:
                run.pacer = None
                return None
            options: dict[str, Any] = {"history": history}
            if mode == "predictive":
                options["target_abandon_rate"] = cfg.pacing_target / 100.0
                options["abandon_after_seconds"] = self.settings.engine.abandon_after_seconds
            if mode == "ratio":
                options["ratio"] = cfg.ratio
            run.pacer = self.pacing.make_pacer(mode, **options)
            run.day = day
        return run.pacer

    def snapshot(self, cid: int, now: float) -> Any:
        """The pacer's view of one campaign now (DESIGN.md's PacingSnapshot)."""
        key = str(cid)
        ready = 0
        talking: list[float] = []
        wrapping: list[float] = []
        for a in self.agents.members(key).values():
            if a.status is S.READY:
                ready += 1
            elif a.status in ag.ON_CALL:
                talking.append(now - a.since)
            elif a.status is S.WRAPUP:
                wrapping.append(now - a.since)
        ringing: list[float] = []
        waiting: list[float] = []
        for c in self.calls.values():
            if c.state.campaign != key or c.orphan:
                continue
            if c.state.phase in (CallPhase.WAITING,) or (
                c.live and not c.connected and c.state.phase is CallPhase.ANSWERED
            ):
                waiting.append(now - (c.state.live_at or now))
            elif not c.classified and c.state.phase is not CallPhase.ENDED:
                ringing.append(now - c.state.launched_at)
        return self.pacing.PacingSnapshot(
            now=now,
            ready_agents=ready,
            talking=tuple(talking),
            wrapping=tuple(wrapping),
            ringing=tuple(ringing),
            waiting=tuple(waiting),
        )

    def _pace(self, cid: int, run: CampaignRun, now: float) -> None:
        if run.history is None:
            return  # the abandonment history is being read (milliseconds after a start)
        pacer = self._pacer_for(run)
        if pacer is None:
            return
        logged_in = self.agents.logged_in_count(str(cid)) > 0
        if logged_in:
            self._refill(cid, run, now)
        if not self.ami_up or not self.ami.connected or not run.buffer:
            return
        if self.inbound.hold_outbound(now, str(cid)):
            return  # inbound (issue 10): a caller waits too long; free agents go to them
        # inbound (issue 10): callers waiting in the queue count as live calls waiting (issue 9:
        # only as many as this campaign's agents would take)
        want = int(pacer.decide(self.inbound.pacing_view(self.snapshot(cid, now), str(cid))))
        run.last_decision = want
        if want > 0:
            log.debug("pacer: %s", getattr(pacer, "last_decision", None))
        if want <= 0:
            return
        gate = self.trunks.get(run.config.trunk) or self._default_gate(run.config.trunk)
        # Launches still in their last look were asked for by an earlier decide() and are not
        # yet reported to the pacer: count them against this decision, so none is doubled.
        n = min(want - run.rechecking, len(run.buffer), gate.room(now) - run.rechecking)
        for _ in range(max(0, n)):
            ticket = run.buffer.popleft()
            run.rechecking += 1
            self._later(functools.partial(self._recheck, cid, ticket, want))
        self._refill(cid, run, now)

    async def _recheck(self, cid: int, ticket: LeadTicket, want: int) -> None:
        """Ask the record, right before dialling, whether the lead may still be called.

        A lead waits in the buffer for a while; a number put on the DNC list (or a lead whose
        calling window closed) since it was reserved must not be dialled.  If the record cannot
        answer, the lead is not dialled either.
        """
        try:
            reason = await self.store.recheck(ticket.lead_id, ticket.phone)
        except Exception as exc:
            reason = f"recheck failed: {type(exc).__name__}"
        self.post(RecheckIn(cid, ticket, want, reason or ""))

    def _on_recheck(self, item: RecheckIn) -> None:
        run = self.campaigns.get(item.campaign_id)
        if run is not None:
            run.rechecking = max(0, run.rechecking - 1)
        ticket = item.ticket
        reason = item.reason
        if not reason and (run is None or run.config.status != "running" or self.stopping):
            reason = "campaign no longer running"
        if not reason and not (self.ami_up and self.ami.connected):
            reason = "AMI link down"
        if reason:
            log.info("engine: lead %s not dialled: %s", ticket.lead_id, reason)
            self.leads_in_flight.discard(ticket.lead_id)
            self._release([ticket.lead_id])
            return
        assert run is not None
        gate = self.trunks.get(run.config.trunk) or self._default_gate(run.config.trunk)
        now = self.clock.now()
        if gate.room(now) <= 0:
            # Another campaign on the same trunk took the last channel meanwhile: keep the lead
            # for the next decision rather than break the trunk's limit.
            run.buffer.appendleft(ticket)
            return
        self._launch(run, ticket, gate, now, item.want)

    def _default_gate(self, name: str) -> TrunkGate:
        base = self.settings.asterisk.trunks[0] if self.settings.asterisk.trunks else None
        gate = TrunkGate(base if base is not None else TrunkSettings(name=name))
        self.trunks[name] = gate
        return gate

    def _refill(self, cid: int, run: CampaignRun, now: float) -> None:
        if run.fetching or now < run.exhausted_until or self.stopping:
            return
        agents = self.agents.logged_in_count(str(cid))
        target = max(BUFFER_MIN, BUFFER_PER_AGENT * agents)
        if len(run.buffer) >= (2 * target) // 3 + 1:
            return
        run.fetching = True
        count = target - len(run.buffer)

        async def fetch() -> None:
            try:
                tickets = await self.store.reserve_leads(cid, count)
                self.post(LeadsIn(cid, list(tickets)))
            except Exception as exc:
                self.post(LeadsIn(cid, [], error=f"{type(exc).__name__}: {exc}"))

        self._later(fetch)

    def _on_leads(self, item: LeadsIn) -> None:
        run = self.campaigns.get(item.campaign_id)
        if run is None:
            return
        run.fetching = False
        fresh = [t for t in item.tickets if t.lead_id not in self.leads_in_flight]
        log.debug(
            "hopper: campaign %s gave %d lead(s) (%d new)%s",
            item.campaign_id,
            len(item.tickets),
            len(fresh),
            f"; {item.error}" if item.error else "",
        )
        run.fetch_failed = bool(item.error)
        if item.error:
            log.warning("engine: hopper for campaign %s failed: %s", item.campaign_id, item.error)
            run.exhausted_until = self.clock.now() + 1.0
        elif not fresh:
            # Nothing dialable now: ask again a little later, not on every tick.
            run.exhausted_until = self.clock.now() + 5.0
        if run.config.status != "running" or self.stopping:
            self._release([t.lead_id for t in fresh])
            return
        run.buffer.extend(fresh)
        self.leads_in_flight.update(t.lead_id for t in fresh)

    def _release_buffer(self, run: CampaignRun) -> None:
        ids = [t.lead_id for t in run.buffer]
        run.buffer.clear()
        self.leads_in_flight.difference_update(ids)
        self._release(ids)

    def _release(self, ids: list[int]) -> None:
        if ids:
            self._later(lambda: self.store.release_leads(ids))

    def _new_call_id(self) -> str:
        self._seq += 1
        return f"d{int(time.time()):x}{secrets.token_hex(3)}{self._seq:05d}"

    def _launch(
        self, run: CampaignRun, ticket: LeadTicket, gate: TrunkGate, now: float, want: int
    ) -> None:
        cfg = run.config
        call_id = self._new_call_id()
        dial = dial_string(gate.settings, ticket.phone)
        state = CallState(call_id, str(cfg.id), ticket.lead_id, ticket.phone, launched_at=now)
        track = CallTrack(state, gate.settings.name, dial, last_news=now)
        self.calls[call_id] = track
        self.by_other[f"{call_id}-2"] = call_id
        gate.start(now)
        self.stats.originated += 1
        run.counters["dials"] = run.counters.get("dials", 0) + 1
        if run.pacer is not None:
            run.pacer.observe(self.pacing.CallLaunched(at=now))
        started = CallStarted(
            call_id=call_id,
            owner=self.owner,
            campaign_id=cfg.id,
            lead_id=ticket.lead_id,
            phone=ticket.phone,
            trunk=gate.settings.name,
            originated_at=_now_utc(),
            pacing_decision={"asked": want, "mode": cfg.dial_mode},
        )
        self._later(lambda: self.store.call_started(started))
        amd = "1" if (self.settings.asterisk.amd and cfg.amd_action != "off") else "0"
        headers = [
            ("Channel", dial),
            ("Context", "dialer-out"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Async", "true"),
            ("ChannelId", call_id),
            ("OtherChannelId", f"{call_id}-2"),
            ("Timeout", str(int(cfg.ring_timeout * 1000))),
            ("CallerID", cfg.caller_id or cfg.name),
            ("Variable", f"CALLID={call_id}"),
            ("Variable", f"CAMPAIGN={cfg.id}"),
            ("Variable", f"LEADID={ticket.lead_id}"),
            ("Variable", f"DIALER_AMD={amd}"),
            ("Variable", f"ABANDON_PROMPT={self._abandon_prompt(run)}"),
        ]
        self._later(lambda: self._originate(call_id, headers))
        self._timer("stale", call_id, now + cfg.ring_timeout + STALE_AFTER)
        self.live.call(call_id, self._call_view(track))

    async def _originate(self, call_id: str, headers: list[tuple[str, str]]) -> None:
        try:
            reply = await self.ami.send("Originate", headers)
            self.post(OriginateIn(call_id, reply.ok, reply.message))
        except Exception as exc:
            # Sent but the answer was lost (link dropped): the call may exist.  Reconciliation
            # decides; a pending Originate is never re-sent (it could dial the person twice).
            lost = type(exc).__name__ in ("AmiLinkLost", "AmiTimeout")
            self.post(OriginateIn(call_id, False, f"{type(exc).__name__}: {exc}", unknown=lost))

    def _on_originate(self, item: OriginateIn) -> None:
        call = self.calls.get(item.call_id)
        if call is None or call.state.phase is CallPhase.ENDED:
            return
        if item.ok:
            call.originated = True
            if call.state.phase is CallPhase.PENDING:
                call.state = advance(call.state, CallEvent.SENT, self.clock.now())
            return
        if item.unknown:
            self.stats.unknown_sent += 1
            call.originated = True
            call.link_lost = True
            if call.state.phase is CallPhase.PENDING:
                call.state = advance(call.state, CallEvent.SENT, self.clock.now())
            return
        log.info("engine: originate %s refused: %s", item.call_id, item.message)
        if item.message.startswith("AmiNotConnected"):
            self.stats.not_sent += 1
        call.originate_failed = True
        self._finalize(call)

    # ------------------------------------------------------------------ AMI events

    def _call_of(self, uniqueid: str | None) -> tuple[CallTrack | None, bool]:
        """The call a channel belongs to, and whether it is the ``;2``/other leg."""
        if not uniqueid:
            return None, False
        call = self.calls.get(uniqueid)
        if call is not None:
            return call, False
        cid = self.by_other.get(uniqueid)
        if cid is not None:
            return self.calls.get(cid), True
        return None, False

    def _on_ami(self, msg: Message) -> None:
        name = msg.name
        handler = _AMI_HANDLERS.get(name)
        if handler is not None:
            handler(self, msg)

    def _ev_newchannel(self, msg: Message) -> None:
        call, other = self._call_of(msg.get("Uniqueid"))
        if call is not None and not other:
            call.channel = msg.get("Channel") or call.channel
            call.seen_channel = True
            call.last_news = self.clock.now()
        elif call is None:
            self._inbound_arrived(msg)

    def _inbound_arrived(self, msg: Message) -> None:
        """An inbound call on one of our trunks takes a channel there (issue 8)."""
        seen = inbound_channel(msg, self.settings.asterisk.trunks)
        if seen is not None:
            self.trunk_inbound.arrived(seen, self.clock.now())

    def _ev_newstate(self, msg: Message) -> None:
        call, other = self._call_of(msg.get("Uniqueid"))
        if call is None or call.state.phase is CallPhase.ENDED:
            return
        call.seen_channel = call.seen_channel or not other
        if not other and msg.get("Channel"):
            call.channel = msg.get("Channel") or call.channel
        desc = (msg.get("ChannelStateDesc") or "").lower()
        now = self.clock.now()
        call.last_news = now
        if desc == "ringing" and call.state.phase in (CallPhase.ORIGINATING, CallPhase.PENDING):
            self._advance(call, CallEvent.RING)
        elif desc == "up" and not other:
            self._answered(call)

    def _advance(self, call: CallTrack, event: CallEvent) -> None:
        now = self.clock.now()
        if call.state.phase is CallPhase.PENDING and event is not CallEvent.END:
            call.state = advance(call.state, CallEvent.SENT, now)
        if call.state.phase is CallPhase.RINGING and event is CallEvent.RING:
            return
        call.state = advance(call.state, event, now)
        self.live.call(call.state.call_id, self._call_view(call))

    def _answered(self, call: CallTrack) -> None:
        if call.state.phase in (CallPhase.PENDING, CallPhase.ORIGINATING, CallPhase.RINGING):
            self._advance(call, CallEvent.ANSWER)
            self._progress(call)
            run = self.campaigns.get(int(call.state.campaign))
            amd_on = self.settings.asterisk.amd and (run is None or run.config.amd_action != "off")
            if not amd_on:
                self._verdict(call, "")

    def _verdict(self, call: CallTrack, status: str, cause: str = "") -> None:
        """The call is classified: AMD verdict (or answer without AMD).  Starts the clock."""
        if call.classified or call.state.phase is CallPhase.ENDED:
            return
        if call.state.phase in (CallPhase.PENDING, CallPhase.ORIGINATING, CallPhase.RINGING):
            self._advance(call, CallEvent.ANSWER)
        now = self.clock.now()
        call.classified = True
        call.amd_status = status or call.amd_status
        call.amd_cause = cause or call.amd_cause
        run = self.campaigns.get(int(call.state.campaign))
        notsure_live = run.config.notsure_is_live if run else True
        amd = normalise_amd_status(call.amd_status)
        live = amd != "HANGUP" and amd_is_live(amd, notsure_is_live=notsure_live)
        call.live = live
        answered_at = call.state.answered_at if call.state.answered_at is not None else now
        ring = max(0.0, now - call.state.launched_at)
        if run is not None and run.pacer is not None and not call.orphan:
            run.pacer.observe(self.pacing.CallAnswered(at=now, ring_seconds=ring, live=live))
        if run is not None:
            run.counters["answers"] = run.counters.get("answers", 0) + 1
            if live:
                run.counters["live"] = run.counters.get("live", 0) + 1
        del answered_at
        if live:
            call.live_perf = time.perf_counter()
            self._advance(call, CallEvent.LIVE)
            call.deadline = now + self.settings.engine.abandon_after_seconds - ABANDON_MARGIN
            self._timer("deadline", call.state.call_id, call.deadline)
            self.waiting.setdefault(int(call.state.campaign), deque()).append(call.state.call_id)
            self._dispatch(int(call.state.campaign))
        elif amd != "HANGUP":
            self._advance(call, CallEvent.NOT_LIVE)
        self._progress(call)

    def _ev_varset(self, msg: Message) -> None:
        var = (msg.get("Variable") or "").upper()
        if var not in ("AMDSTATUS", "AMDCAUSE"):
            return
        call, other = self._call_of(msg.get("Uniqueid"))
        if call is None or other:
            return
        value = msg.get("Value") or ""
        if var == "AMDCAUSE":
            call.amd_cause = value
            return
        call.amd_status = value
        self._verdict(call, value)

    def _ev_userevent(self, msg: Message) -> None:
        kind = (msg.get("UserEvent") or "").lower()
        if kind == "dialeramd":
            call = self.calls.get(msg.get("Call") or "")
            if call is not None:
                self._verdict(call, msg.get("AMDStatus") or "", msg.get("AMDCause") or "")
        elif kind == "dialerabandon":
            call = self.calls.get(msg.get("Call") or "")
            if call is not None and not call.connected:
                # FastAGI unreachable: the dialplan plays the message itself (trace 32).
                self._abandon(call, "dialplan")
        elif kind == "agentwrapup":
            agent_id = msg.get("Agent") or ""
            a = self.agents.get(agent_id)
            if a is not None and a.status is S.TALKING:
                self._agent_event(agent_id, AgentEvent.CALL_END)

    def _ev_dialend(self, msg: Message) -> None:
        call, _ = self._call_of(msg.get("DestUniqueid") or msg.get("Uniqueid"))
        if call is not None:
            call.dial_status = msg.get("DialStatus") or call.dial_status
            if (call.dial_status or "").upper() == "ANSWER":
                self._answered(call)

    def _ev_originateresponse(self, msg: Message) -> None:
        uid = msg.get("Uniqueid") or ""
        call = self.calls.get(uid)
        if call is None:
            call = self.calls.get(msg.get("ActionID") or "")
        if call is None or call.state.phase is CallPhase.ENDED:
            return
        call.originate_reason = _int(msg.get("Reason"))
        call.last_news = self.clock.now()
        if (msg.get("Response") or "").lower() == "success":
            self._answered(call)
            return
        call.originate_failed = True
        if not call.seen_channel or uid in ("", "<unknown>"):
            # No channel was ever created (trace 17): nothing else will come.
            self._finalize(call)
        else:
            self._timer("finalize", call.state.call_id, self.clock.now() + FINALIZE_GRACE)

    def _ev_hangup(self, msg: Message) -> None:
        uid = msg.get("Uniqueid")
        call, other = self._call_of(uid)
        if call is None and self.trunk_inbound.ended(uid or ""):
            return  # an inbound call's trunk channel is free again
        cause = _int(msg.get("Cause"))
        if call is not None:
            if other:
                call.other_cause = cause
                call.other_cause_txt = msg.get("Cause-txt") or ""
            else:
                call.self_cause = cause
                call.self_cause_txt = msg.get("Cause-txt") or ""
                call.hung_up = True
                call.last_news = self.clock.now()
                if call.live and not call.connected and call.state.phase is not CallPhase.ENDED:
                    # The person left while waiting for an agent: abandoned (DESIGN).
                    self._abandon(call, "left_waiting")
                grace = 0.0 if call.classified else FINALIZE_GRACE
                self._timer("finalize", call.state.call_id, self.clock.now() + grace)
            return
        channel = msg.get("Channel") or ""
        agent_id = self.by_channel.get(channel)
        if agent_id is not None:
            self._logout(agent_id, "hangup")

    def _ev_bridgeenter(self, msg: Message) -> None:
        bridge = msg.get("BridgeUniqueid") or ""
        call, other = self._call_of(msg.get("Uniqueid"))
        if call is not None and not other:
            call.customer_bridge = bridge
            self._maybe_connected(call)
            return
        agent_id = self.by_channel.get(msg.get("Channel") or "")
        if agent_id is None:
            return
        a = self.agents[agent_id]
        call = self.calls.get(a.call_id)
        if call is not None:
            call.agent_bridge = bridge
            self._maybe_connected(call)

    def _maybe_connected(self, call: CallTrack) -> None:
        if call.connected or not call.customer_bridge:
            return
        if call.customer_bridge != call.agent_bridge:
            return
        self._connect(call)

    def _connect(self, call: CallTrack) -> None:
        """Both legs are in the bridge: the hand-off is done."""
        agent_id = call.state.agent_id
        a = self.agents.get(agent_id)
        if a is None or a.status is not S.RESERVED or a.call_id != call.state.call_id:
            return
        now = self.clock.now()
        call.connected = True
        self._cancel_timer("deadline", call.state.call_id)
        if call.live_perf:
            # The ledger keeps what the person lived through: verdict -> connected.  The
            # controller's own hand-off runs from the moment there is both a live person and a
            # free agent (a wait for an agent is the pacer's business, measured apart).
            done = time.perf_counter()
            call.handoff_ms = (done - call.live_perf) * 1000.0
            start = max(call.live_perf, call.reserved_perf)
            self.stats.handoff_ms.append((done - start) * 1000.0)
            self.stats.agent_wait_ms.append(max(0.0, call.reserved_perf - call.live_perf) * 1000.0)
            if call.asked_perf and call.offered_perf:
                # Where the time went: PBX -> FastAGI request, engine, bridge -> AMI events.
                self.stats.handoff_parts.append(
                    (
                        max(0.0, call.asked_perf - start) * 1000.0,
                        (call.offered_perf - max(call.asked_perf, start)) * 1000.0,
                        (done - call.offered_perf) * 1000.0,
                    )
                )
        wait = max(0.0, now - (call.state.live_at or now))
        if call.state.phase is CallPhase.WAITING:
            self._advance(call, CallEvent.CONNECT)
        self._agent_event(agent_id, AgentEvent.CONNECT)
        run = self.campaigns.get(int(call.state.campaign))
        if run is not None:
            run.counters["connects"] = run.counters.get("connects", 0) + 1
            if run.pacer is not None:
                run.pacer.observe(self.pacing.CallConnected(at=now, wait_seconds=wait))
        self._progress(call)

    def _ev_bridgeleave(self, msg: Message) -> None:
        agent_id = self.by_channel.get(msg.get("Channel") or "")
        if agent_id is None:
            return
        a = self.agents.get(agent_id)
        if a is not None and a.status is S.TALKING:
            self._agent_event(agent_id, AgentEvent.CALL_END)

    # ------------------------------------------------------------------ hand-off

    def _abandon_prompt(self, run: CampaignRun | None) -> str:
        if run is not None and run.config.abandon_message:
            return run.config.abandon_message
        return self.settings.asterisk.abandon_prompt

    def _on_handoff(self, item: HandoffIn) -> None:
        call = self.calls.get(item.call_id)
        if call is None or call.state.phase is CallPhase.ENDED:
            # A call we do not know (a previous run's, or already settled): no agent for it.
            item.reply.set_result(HandoffPlan("abandon", prompt=self._abandon_prompt(None)))
            orphan = self.calls.get(item.call_id)
            if orphan is not None and orphan.orphan and orphan.state.phase is not CallPhase.ENDED:
                orphan.abandoned = True
                self._finalize(orphan)
            return
        call.channel = item.channel or call.channel
        call.seen_channel = True
        run = self.campaigns.get(int(call.state.campaign))
        if item.amd_status and not call.classified:
            self._verdict(call, item.amd_status, item.amd_cause)
        elif not call.classified:
            amd_on = self.settings.asterisk.amd and (run is None or run.config.amd_action != "off")
            if amd_on and not call.amd_status and item.amd_status != "-":
                # The AMI events with the verdict have not come (link down?): the FastAGI
                # session must read AMDSTATUS itself and ask again.
                item.reply.set_result(HandoffPlan("need_amd"))
                return
            self._verdict(call, call.amd_status)
        if not call.live:
            if run is not None and run.config.amd_action == "message" and run.config.amd_message:
                if normalise_amd_status(call.amd_status) == "MACHINE":
                    item.reply.set_result(HandoffPlan("message", prompt=run.config.amd_message))
                    return
            item.reply.set_result(HandoffPlan("hangup"))
            return
        if call.abandoned or call.state.phase is CallPhase.ABANDONING:
            item.reply.set_result(HandoffPlan("abandon", prompt=self._abandon_prompt(run)))
            return
        call.plan = item.reply
        call.asked_perf = time.perf_counter()
        log.debug(
            "call %s: hand-off asked %.1f ms after the verdict",
            call.state.call_id,
            (time.perf_counter() - call.live_perf) * 1000 if call.live_perf else -1.0,
        )
        self._offer(call)

    def _offer(self, call: CallTrack) -> None:
        """If this call has an agent reserved, tell its FastAGI session to bridge now."""
        if call.plan is None or call.plan.done() or not call.state.agent_id:
            return
        a = self.agents.get(call.state.agent_id)
        if a is None or a.status is not S.RESERVED:
            return
        run = self.campaigns.get(int(call.state.campaign))
        record = ""
        if run is not None and run.config.recording:
            record = f"dialer/{run.config.id}/{call.state.call_id}.wav"
            call.record_path = record
        call.offered_perf = time.perf_counter()
        call.plan.set_result(
            HandoffPlan(
                "bridge",
                agent=a.agent_id,
                channel=a.channel,
                deadline=call.deadline,
                record_path=record,
            )
        )

    def _dispatch(self, cid: int) -> None:
        """Give waiting live calls of a campaign to its longest-idle READY agents."""
        queue = self.waiting.get(cid)
        while queue:
            call = self.calls.get(queue[0])
            if call is None or call.state.phase is not CallPhase.WAITING or call.state.agent_id:
                queue.popleft()
                continue
            best = ag.longest_idle(self.agents.ready(str(cid)), str(cid))
            if best is None:
                return
            queue.popleft()
            call.reserved_perf = time.perf_counter()
            call.state = replace(call.state, agent_id=best.agent_id)
            self._agent_event(best.agent_id, AgentEvent.RESERVE, call_id=call.state.call_id)
            self._offer(call)

    def _requeue(self, call: CallTrack) -> None:
        """The reserved agent is gone: wait again (front of the queue) while time remains."""
        if call.state.phase is not CallPhase.WAITING:
            return
        cid = int(call.state.campaign)
        self.waiting.setdefault(cid, deque()).appendleft(call.state.call_id)
        self._dispatch(cid)

    def _on_bridge_result(self, item: BridgeResultIn) -> None:
        call = self.calls.get(item.call_id)
        result = item.result.upper()
        if call is None:
            if item.reply is not None and not item.reply.done():
                item.reply.set_result(HandoffPlan("hangup"))
            return
        a = self.agents.get(item.agent)
        if result == "SUCCESS":
            if not call.connected and a is not None and a.status is S.RESERVED:
                # The AMI events were missed (link down): the bridge did happen.
                self._connect(call)
            if item.reply is not None and not item.reply.done():
                item.reply.set_result(HandoffPlan("hangup"))
            return
        # NONEXISTENT / FAILURE / LOOP: this agent's line is not usable (trace 31).
        log.info(
            "call %s: bridge to agent %s gave %s (agent %s)",
            item.call_id,
            item.agent,
            result,
            a.status.value if a else "?",
        )
        if a is not None and a.status is S.RESERVED and a.call_id == item.call_id:
            if result == "NONEXISTENT":
                self._logout(item.agent, "line gone")
            else:
                self._agent_event(item.agent, AgentEvent.RELEASE)
                call.state = replace(call.state, agent_id="")
        if call.state.agent_id == item.agent:
            call.state = replace(call.state, agent_id="")
        if item.reply is not None:
            call.plan = item.reply
        if call.state.phase is CallPhase.WAITING and self.clock.now() < call.deadline:
            if call.state.call_id not in self.waiting.get(int(call.state.campaign), ()):
                self._requeue(call)
            self._offer(call)
        elif call.plan is not None and not call.plan.done():
            self._abandon(call, "no_time")

    def _abandon(self, call: CallTrack, why: str) -> None:
        if call.connected or call.state.phase is CallPhase.ENDED:
            return
        run = self.campaigns.get(int(call.state.campaign))
        if not call.abandoned:
            log.info(
                "call %s abandoned (%s) after %.2f s waiting; %d ready",
                call.state.call_id,
                why,
                self.clock.now() - (call.state.live_at or self.clock.now()),
                self.agents.ready_count(),
            )
            call.abandoned = True
            now = self.clock.now()
            if run is not None:
                run.counters["abandoned"] = run.counters.get("abandoned", 0) + 1
                if run.pacer is not None and call.live:
                    wait = max(0.0, now - (call.state.live_at or now))
                    run.pacer.observe(self.pacing.CallAbandoned(at=now, wait_seconds=wait))
            if call.state.phase is CallPhase.WAITING:
                self._advance(call, CallEvent.ABANDON)
        self._cancel_timer("deadline", call.state.call_id)
        if call.state.agent_id:
            a = self.agents.get(call.state.agent_id)
            if a is not None and a.status is S.RESERVED and a.call_id == call.state.call_id:
                self._agent_event(a.agent_id, AgentEvent.RELEASE)
            call.state = replace(call.state, agent_id="")
        if call.plan is not None and not call.plan.done():
            call.plan.set_result(HandoffPlan("abandon", prompt=self._abandon_prompt(run)))

    # ------------------------------------------------------------------ timers

    def _on_timer(self, item: TimerIn) -> None:
        if item.kind == "stale" and item.key == RECONCILE_KEY:
            self._reconcile_request()
            return
        call = self.calls.get(item.key)
        if call is None:
            return
        if item.kind == "deadline":
            # No agent reserved in time: abandon.  A reserved agent is being bridged right now
            # (single-digit ms); that hand-off is let through.
            if not call.connected and not call.state.agent_id:
                self._abandon(call, "deadline")
        elif item.kind == "finalize":
            self._finalize(call)
        elif item.kind == "stale":
            self._reconcile_stale()

    # ------------------------------------------------------------------ the end of a call

    def _finalize(self, call: CallTrack) -> None:
        """End a call exactly once: pacer, agent, ledger, counters."""
        if call.state.phase is CallPhase.ENDED:
            return
        now = self.clock.now()
        run = self.campaigns.get(int(call.state.campaign))
        if call.live and not call.connected and not call.abandoned:
            self._abandon(call, "finalize")
        facts = CallFacts(
            answered=call.state.answered_at is not None,
            originate_reason=call.originate_reason,
            dial_status=call.dial_status,
            hangup_cause=pick_cause(call.self_cause, call.other_cause, cause_leg(call.dial)),
            amd_status=call.amd_status or None,
            notsure_is_live=run.config.notsure_is_live if run else True,
            connected=call.connected,
            abandoned=call.abandoned,
            link_lost=call.link_lost and not call.hung_up,
        )
        result = classify(facts)
        if not call.classified and run is not None and run.pacer is not None and not call.orphan:
            ring = max(0.0, now - call.state.launched_at)
            if facts.answered or call.amd_status:
                run.pacer.observe(self.pacing.CallAnswered(at=now, ring_seconds=ring, live=False))
            else:
                run.pacer.observe(
                    self.pacing.CallUnanswered(
                        at=now, ring_seconds=ring, reason=pacer_reason(result)
                    )
                )
        call.classified = True
        agent_id = call.state.agent_id
        a = self.agents.get(agent_id) if agent_id else None
        if a is not None and a.status is S.RESERVED and a.call_id == call.state.call_id:
            self._agent_event(agent_id, AgentEvent.RELEASE)
        self.agent_dial.ended(call.state.call_id, result)  # preview/manual (issue 8): say why
        call.state = advance(call.state, CallEvent.END, now)
        for kind in ("deadline", "finalize", "stale"):
            self._cancel_timer(kind, call.state.call_id)
        self._ended_leads[call.state.call_id] = call.state.lead_id
        if len(self._ended_leads) > 5000:
            for key in list(self._ended_leads)[:1000]:
                del self._ended_leads[key]
        self._write_outcome(call, result, run, now)
        self.calls.pop(call.state.call_id, None)
        self.by_other.pop(f"{call.state.call_id}-2", None)
        self.leads_in_flight.discard(call.state.lead_id)
        gate = self.trunks.get(call.trunk)
        if gate is not None and not call.orphan:
            gate.end()
        self.stats.ended += 1
        if run is not None:
            key = result.value
            if not (result is CallResult.ABANDONED and call.abandoned):
                # (an abandonment is counted when it happens, in _abandon)
                run.counters[key] = run.counters.get(key, 0) + 1
            run.counters["ended"] = run.counters.get("ended", 0) + 1
        self.live.call(call.state.call_id, None)

    def _write_outcome(
        self, call: CallTrack, result: CallResult, run: CampaignRun | None, now: float
    ) -> None:
        st = call.state
        wall = _now_utc()

        def ago(t: float | None) -> datetime | None:
            return None if t is None else wall - timedelta(seconds=max(0.0, now - t))

        talk = None
        if st.connected_at is not None:
            talk = max(0.0, now - st.connected_at)
        no_redial = (
            self.settings.site.abandon_no_redial_hours if result is CallResult.ABANDONED else None
        )
        row = CallOutcome(
            call_id=st.call_id,
            campaign_id=int(st.campaign),
            lead_id=st.lead_id,
            result=result,
            ended_at=wall,
            answered_at=ago(st.answered_at),
            connected_at=ago(st.connected_at),
            agent_number=st.agent_id or None,
            ring_seconds=(st.answered_at or now) - st.launched_at,
            wait_seconds=(st.connected_at - st.live_at)
            if (st.connected_at is not None and st.live_at is not None)
            else None,
            talk_seconds=talk,
            handoff_ms=call.handoff_ms,
            **_hangup_cause(call),
            amd_status=call.amd_status,
            amd_cause=call.amd_cause,
            recording_path=call.record_path,
            no_redial_hours=no_redial,
        )
        self._later(lambda: self.store.call_ended(row))
        self.live.event(
            {"kind": "call", "call": st.call_id, "result": result.value, "agent": st.agent_id}
        )

    def _progress(self, call: CallTrack) -> None:
        st = call.state
        wall = _now_utc()
        row = CallProgress(
            call_id=st.call_id,
            answered_at=wall if st.answered_at is not None else None,
            connected_at=wall if call.connected else None,
            agent_number=st.agent_id or None,
            amd_status=call.amd_status,
            live=call.live,
        )
        self._later(lambda: self.store.call_progress(row))

    # ------------------------------------------------------------------ wrap-up timeouts

    def _overdue_wrapups(self, now: float) -> None:
        for a in self.agents.in_wrapup():
            run = self.campaigns.get(_int(a.campaign) or -1)
            limit = run.config.wrapup_seconds if run else self.settings.engine.wrapup_seconds
            if now - a.since > limit + self._wrapup_grace:
                self._write_disposition(a, None, default=True)
                self._agent_event(a.agent_id, AgentEvent.WRAPUP_DONE)

    # ------------------------------------------------------------------ link and reconciliation

    def _on_link(self, up: bool) -> None:
        was = self.ami_up
        self.ami_up = up
        log.info("engine: AMI link %s", "up" if up else "down")
        if up and (self._ever_up or any(c.orphan for c in self.calls.values())):
            self._reconcile_request()
        elif up:
            self._reconcile_request(inbound_only=True)  # callers already up hold trunk channels
        if up:
            self._ever_up = True
            self.stats.links += 1
        del was

    def _reconcile_stale(self) -> None:
        """A call not heard of for long: list the channels now, or once RECONCILE_EVERY has
        passed since the last listing (that one then covers every call launched before it)."""
        due = self._reconcile_asked + RECONCILE_EVERY
        if self.clock.now() >= due:
            self._reconcile_request()
        elif ("stale", RECONCILE_KEY) not in self._timers:
            self._timer("stale", RECONCILE_KEY, due)

    def _reconcile_request(self, *, inbound_only: bool = False) -> None:
        if not inbound_only:
            if self._reconciling:
                return
            self._reconciling = True
            self._reconcile_asked = self.clock.now()
            self._cancel_timer("stale", RECONCILE_KEY)
        asked = self.clock.now()

        async def ask() -> None:
            try:
                reply = await self.ami.send("CoreShowChannels", [])
                uids = frozenset(e.get("Uniqueid", "") for e in reply.events)
                names = frozenset(e.get("Channel", "") for e in reply.events)
                trunks = self.settings.asterisk.trunks
                inbound = tuple(
                    c for c in (inbound_channel(e, trunks) for e in reply.events) if c is not None
                )
                self.post(
                    ReconcileIn(asked, uids, names, reply.ok, inbound, inbound_only=inbound_only)
                )
            except Exception:
                self.post(ReconcileIn(asked, frozenset(), frozenset(), False, (), inbound_only))

        self._later(ask)

    def _on_reconcile(self, item: ReconcileIn) -> None:
        if item.inbound_only:
            if item.ok:
                self._reconcile_inbound(item)
            return
        self._reconciling = False
        self.stats.reconciled += 1
        if not item.ok:
            if self.ami_up:
                self._timer("stale", "__reconcile__", self.clock.now() + 5.0)
            return
        now = self.clock.now()
        for call in list(self.calls.values()):
            if call.state.phase is CallPhase.ENDED:
                continue
            if call.state.launched_at > item.asked_at and not call.orphan:
                continue
            cid = call.state.call_id
            if cid in item.uniqueids or f"{cid}-2" in item.uniqueids:
                call.last_news = now
                if call.orphan:
                    self._timer("stale", cid, now + STALE_AFTER)
                continue
            if not call.originated and not call.orphan and call.state.phase is CallPhase.PENDING:
                continue  # the Originate has not even been answered yet
            if not call.orphan and call.last_news > item.asked_at - RECONCILE_MARGIN:
                # Heard of just before the listing: its channel may not be in it yet (an
                # Originate still being set up).  The stale timer looks again later.
                self._timer("stale", cid, now + STALE_AFTER)
                continue
            # Asterisk has no channel for it: it ended while we could not see.
            call.link_lost = True
            call.hung_up = False
            self._finalize(call)
        for agent_id, a in list(self.agents.items()):
            if a.logged_in and a.channel and a.channel not in item.channels:
                self._logout(agent_id, "line gone")
        self._reconcile_inbound(item)

    def _reconcile_inbound(self, item: ReconcileIn) -> None:
        """Inbound calls on the trunks: release those that ended unseen, adopt those that came."""
        mine = {c.state.call_id for c in self.calls.values()}
        listed = [c for c in item.inbound if c.uniqueid not in mine]
        self.trunk_inbound.reconcile(item.uniqueids, listed, item.asked_at, self.clock.now())

    def _on_recover(self, item: RecoverIn) -> None:
        """Adopt ledger rows a previous run left open; reconciliation settles them."""
        now = self.clock.now()
        for oc in item.calls:
            if oc.call_id in self.calls:
                continue
            st = CallState(oc.call_id, str(oc.campaign_id), oc.lead_id, "", launched_at=now)
            track = CallTrack(st, "", "", originated=True, orphan=True, last_news=now)
            # The pacer never hears of orphans; "classified" only records a verdict seen.
            track.classified = oc.answered and oc.live is not None
            track.connected = oc.connected
            track.live = oc.live
            if oc.answered:
                track.state = replace(st, phase=CallPhase.ANSWERED, answered_at=now)
            else:
                track.state = replace(st, phase=CallPhase.ORIGINATING)
            track.state = replace(track.state, agent_id=oc.agent_number or "")
            self.calls[oc.call_id] = track
            self.by_other[f"{oc.call_id}-2"] = oc.call_id
            self.leads_in_flight.add(oc.lead_id)
        if item.calls and self.ami_up:
            self._reconcile_request()

    # ------------------------------------------------------------------ live view

    def _call_view(self, call: CallTrack) -> dict[str, Any]:
        st = call.state
        return {
            "call": st.call_id,
            "campaign": st.campaign,
            "lead": st.lead_id,
            "phase": st.phase.value,
            "agent": st.agent_id,
            "launched": st.launched_at,
        }

    def _publish_counters(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_publish < 0.25:
            return
        self._last_publish = now
        clock_now = self.clock.now()
        for cid, run in self.campaigns.items():
            c = run.counters
            live = c.get("live", 0)
            snap_ready = len(self.agents.ready(str(cid)))
            data = {
                "name": run.config.name,
                "status": run.config.status,
                "mode": run.config.dial_mode,
                "dials": c.get("dials", 0),
                "answers": c.get("answers", 0),
                "live": live,
                "connects": c.get("connects", 0),
                "abandoned": c.get("abandoned", 0),
                "abandon_rate": (c.get("abandoned", 0) / live) if live else 0.0,
                "ended": c.get("ended", 0),
                "ready": snap_ready,
                "ringing": sum(
                    1
                    for k in self.calls.values()
                    if k.state.campaign == str(cid) and not k.classified
                ),
                "waiting": sum(
                    1
                    for k in self.calls.values()
                    if k.state.campaign == str(cid) and k.state.phase is CallPhase.WAITING
                ),
                "decision": {
                    "launch": run.last_decision,
                    "note": str(getattr(getattr(run.pacer, "last_decision", None), "reason", "")),
                },
                "pacing_target": run.config.pacing_target,
                "occupancy": (c.get("busy_seconds", 0.0) / c["available_seconds"])
                if c.get("available_seconds")
                else None,
                "handoff_p50_ms": _percentile(self.stats.handoff_ms, 0.5),
                "buffer": len(run.buffer),
                "at": clock_now,
            }
            self.live.counters(str(cid), data)


def _hangup_cause(call: CallTrack) -> dict[str, Any]:
    """The cause the ledger keeps, its text, and the leg it was read from ("self"/"other").

    Busy and congestion through a Local channel leave ``0 Unknown`` on the ;1 half and the real
    cause on the ;2 half (traces 13L, 15L): ``pick_cause`` chooses, this names the source.
    """
    leg = cause_leg(call.dial)
    cause = pick_cause(call.self_cause, call.other_cause, leg)
    legs = [("self", call.self_cause, call.self_cause_txt)]
    legs.insert(0 if leg == "self" else 1, ("other", call.other_cause, call.other_cause_txt))
    for name, value, text in legs:
        if value is not None and value == cause:
            return {"hangup_cause": cause, "hangup_cause_text": text, "hangup_leg": name}
    return {"hangup_cause": cause, "hangup_cause_text": "", "hangup_leg": ""}


_AMI_HANDLERS: dict[str, Callable[[Engine, Message], None]] = {
    "Newchannel": Engine._ev_newchannel,
    "Newstate": Engine._ev_newstate,
    "VarSet": Engine._ev_varset,
    "UserEvent": Engine._ev_userevent,
    "DialEnd": Engine._ev_dialend,
    "OriginateResponse": Engine._ev_originateresponse,
    "Hangup": Engine._ev_hangup,
    "BridgeEnter": Engine._ev_bridgeenter,
    "BridgeLeave": Engine._ev_bridgeleave,
}

#: The AMI events the engine acts on (the controller subscribes it to these alone).
ENGINE_AMI_EVENTS: tuple[str, ...] = tuple(_AMI_HANDLERS)
