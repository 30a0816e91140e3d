"""The simulated Asterisk: channels, Originate outcomes, hang-ups and bridges.

Event sequences per outcome copy the recordings (../shared/asterisk/README.md, 12-17 and
13L-15L): a PJSIP trunk answers busy/480/503/404 with ``Reason: 0`` and tells them apart only by
DialEnd's DialStatus and the Hangup cause; through Local channels busy and congestion give
Reason 5 and 8 with ``Cause: 0`` on the ;1 Hangup; an Originate timeout gives Reason 3 and no
DialEnd; a bad channel gives ``Uniqueid: <unknown>`` and no channel events.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dialer.simpbx.channels import CAUSE_TXT, Bridge, Channel, EventBus, Header, fast_encode
from dialer.simpbx.clock import SimClock
from dialer.simpbx.model import PartyPlan, plan_call
from dialer.simpbx.profile import Profile, load_profile

# Reason codes of OriginateResponse (AST_CONTROL_*): 0 failed, 3 ring timeout, 4 answered,
# 5 busy, 8 congestion [13, 13L, 14, 15L].
REASON_FAILED, REASON_TIMEOUT, REASON_ANSWERED, REASON_BUSY, REASON_CONGESTION = 0, 3, 4, 5, 8
REASON_HANGUP = 1  # hung up while ringing (not recorded)
ANSWER_AGENT_SECONDS = 0.3  # a softphone answers an originate to its seat
_CID_RE = re.compile(r'^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$')


@dataclass(frozen=True, slots=True)
class SimAgentSpec:
    """One simulated agent: who they are and the seat (PJSIP endpoint) they sit at."""

    agent_number: str
    pin: str
    seat: str  # endpoint name, e.g. "seat001"


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """The parts of an Originate action the simulator uses."""

    channel: str
    context: str | None
    exten: str | None
    priority: int
    application: str | None
    data: str
    timeout: float  # seconds
    caller_name: str
    caller_num: str
    is_async: bool
    channel_id: str | None
    other_channel_id: str | None
    variables: tuple[tuple[str, str], ...]
    action_id: str | None


@dataclass(slots=True)
class OriginateResult:
    """How an Originate ended (for synchronous Originate and for stats)."""

    success: bool
    reason: int


def parse_callerid(text: str) -> tuple[str, str]:
    """``"Name" <num>`` -> (name, num); a bare number gives an unknown name."""
    m = _CID_RE.match(text)
    if m:
        name = m.group(1) if m.group(1) is not None else (m.group(2) or "").strip()
        return (name or "<unknown>"), (m.group(3) or "<unknown>")
    text = text.strip()
    return "<unknown>", (text or "<unknown>")


class SimPbx:
    """An AMI server and FastAGI client that behave like Asterisk 22 with our dialplan."""

    def __init__(
        self,
        *,
        ami_host: str = "127.0.0.1",
        ami_port: int = 0,
        agi_host: str = "127.0.0.1",
        agi_port: int = 4573,
        username: str = "dialer",
        secret: str | None = None,
        profile: Profile | None = None,
        speed: float = 1.0,
        seed: int = 0,
        agents: Sequence[SimAgentSpec] = (),
        time_source: Callable[[], float] = time.monotonic,
        inbound: bool = True,
    ) -> None:
        self.ami_host = ami_host
        self._ami_port = ami_port
        self.agi_host = agi_host
        self.agi_port = agi_port
        self.username = username
        self.secret = secret if secret is not None else secrets.token_urlsafe(18)
        self.profile = profile if profile is not None else load_profile()
        self.seed = seed
        self.clock = SimClock(speed, source=time_source)
        self.bus = EventBus(self.clock, fast_encode)
        self.channels: dict[str, Channel] = {}
        self.by_uid: dict[str, Channel] = {}
        self.globals: dict[str, str] = {}
        self.agent_specs = tuple(agents)
        self.inbound_enabled = inbound
        self.stats_counter: Counter[str] = Counter()
        self._counters: Counter[str] = Counter()
        self._uid_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._sessions: set[Any] = set()
        self._session_tasks: set[asyncio.Task[Any]] = set()
        self._agents: list[Any] = []
        self._started = False
        self._closing = False
        self._boot_epoch = time.time()
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        from dialer.simpbx.dialplan import Dialplan

        self.dialplan = Dialplan(self)

    # ------------------------------------------------------------------ lifecycle

    @property
    def ami_port(self) -> int:
        """The AMI port actually bound (useful with ``ami_port=0``)."""
        server = self._server
        if isinstance(server, asyncio.Server) and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._ami_port

    @property
    def agi_base(self) -> str:
        """``agi://host:port``: what our dialplan's AGI() calls use."""
        return f"agi://{self.agi_host}:{self.agi_port}"

    async def start(self) -> None:
        """Listen for AMI clients and start the simulated agents and inbound callers."""
        from dialer.simpbx.agents import SimAgent
        from dialer.simpbx.ami_server import AmiSession
        from dialer.simpbx.inbound import InboundCallers

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """One AMI connection, for as long as it lasts."""
            session = AmiSession(self, reader, writer)
            self._sessions.add(session)
            task = asyncio.current_task()
            if task is not None:
                self._session_tasks.add(task)
            try:
                await session.run()
            finally:
                self._sessions.discard(session)
                if task is not None:
                    self._session_tasks.discard(task)

        self._server = await asyncio.start_server(on_client, self.ami_host, self._ami_port)
        self._started = True
        for i, spec in enumerate(self.agent_specs):
            agent = SimAgent(self, spec, self.rng("agent", spec.agent_number, i))
            self._agents.append(agent)
            self.spawn(agent.run())
        if self.inbound_enabled and self.profile.inbound.arrivals_per_hour > 0:
            self.spawn(InboundCallers(self, self.rng("inbound")).run())

    async def close(self) -> None:
        """Stop listening, hang nothing up politely: cancel every task and drop sessions."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        if self._session_tasks:
            # Closing the transports ends each session's read loop; wait for them to return.
            await asyncio.wait(list(self._session_tasks), timeout=2.0)
        tasks = [t for t in self._tasks if not t.done()]
        for ch in list(self.channels.values()):
            tasks.extend(t for t in ch.tasks if not t.done())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> SimPbx:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def spawn(self, coro: Any, owner: Channel | None = None) -> asyncio.Task[Any]:
        """Run a coroutine as a tracked task (cancelled on close)."""
        task = asyncio.get_running_loop().create_task(coro)
        if owner is not None:
            owner.tasks.append(task)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._closing:
            self.stats_counter["internal_errors"] += 1
            import logging

            logging.getLogger("dialer.simpbx").error(
                "simulator task failed", exc_info=task.exception()
            )

    def rng(self, *key: object) -> random.Random:
        """A generator seeded from the simulator's seed and ``key``: stable per call/agent."""
        return random.Random(f"{self.seed}:" + ":".join(str(k) for k in key))

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks: calls by outcome, AMD verdicts, events, agents."""
        out: dict[str, Any] = dict(self.stats_counter)
        out["events"] = self.bus.count
        out["events_by_name"] = dict(self.bus.by_name)
        out["channels_live"] = len(self.channels)
        out["ami_sessions"] = len(self._sessions)
        out["agents"] = {a.spec.agent_number: a.status for a in self._agents}
        return out

    async def wait_idle(self) -> None:
        """Return once no channel exists and no Originate is in progress (tests, benchmarks)."""
        while self.channels or self._inflight:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    def _check_idle(self) -> None:
        if self._idle is not None and not self.channels and not self._inflight:
            self._idle.set()

    def drop_ami_sessions(self) -> int:
        """Cut every AMI connection (a network fault, for tests); how many were cut."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        return len(sessions)

    @property
    def agents(self) -> list[Any]:
        """The simulated agents (SimAgent objects)."""
        return list(self._agents)

    # ------------------------------------------------------------------ channels

    def next_uniqueid(self) -> str:
        """An Asterisk-looking Uniqueid: ``<epoch>.<sequence>``."""
        self._uid_seq += 1
        return f"{int(self._boot_epoch)}.{self._uid_seq}"

    def _next_suffix(self, tech: str) -> str:
        self._counters[tech] += 1
        return f"{self._counters[tech]:08x}"

    def new_channel(
        self,
        tech: str,
        endpoint: str,
        *,
        uniqueid: str | None = None,
        linkedid: str | None = None,
        role: str = "customer",
        half: int = 0,
        suffix: str | None = None,
    ) -> Channel:
        """Create and register a channel (no event: callers emit Newchannel themselves)."""
        suffix = suffix or self._next_suffix(tech)
        name = f"{tech}/{endpoint}-{suffix}" + (f";{half}" if half else "")
        uid = uniqueid or self.next_uniqueid()
        ch = Channel(
            name=name,
            uniqueid=uid,
            linkedid=linkedid or uid,
            tech=tech,
            endpoint=endpoint,
            created=self.clock.now(),
            role=role,
            half=half,
        )
        self.channels[name] = ch
        self.by_uid[uid] = ch
        return ch

    def find(self, name: str) -> Channel | None:
        """A live channel by exact name or Uniqueid (Getvar, Hangup, Status...)."""
        ch = self.channels.get(name) or self.by_uid.get(name)
        return ch if ch is not None and not ch.destroyed else None

    def find_prefix(self, name: str) -> Channel | None:
        """A live channel by name prefix or Uniqueid (``ast_channel_get_by_name_prefix``) [31]."""
        ch = self.find(name)
        if ch is not None:
            return ch
        if not name:
            return None
        for cand in self.channels.values():
            if cand.name.startswith(name) and not cand.destroyed:
                return cand
        return None

    def emit_ch(self, name: str, ch: Channel, extra: Sequence[Header] = ()) -> None:
        """An event made of the channel snapshot plus ``extra`` headers."""
        self.bus.emit(name, [*ch.snapshot(), *extra])

    def setvar(self, ch: Channel, name: str, value: str) -> None:
        """Set a channel variable and report it as VarSet (dialplan class)."""
        ch.variables[name] = value
        self.emit_ch("VarSet", ch, [("Variable", name), ("Value", value)])

    def newstate(self, ch: Channel, state: int) -> None:
        """Change state and report Newstate."""
        ch.state = state
        self.emit_ch("Newstate", ch)

    def getvar(self, ch: Channel | None, name: str) -> str | None:
        """A variable or the few dialplan functions the controller reads; None if unset."""
        fn = name.strip()
        upper = fn.upper()
        if ch is None:
            return self.globals.get(fn)
        if upper in ("CALLERID(NUM)", "CALLERID(NUMBER)"):
            return ch.cid_num
        if upper == "CALLERID(NAME)":
            return ch.cid_name
        if upper == "CALLERID(ALL)":
            return f'"{ch.cid_name}" <{ch.cid_num}>'
        if upper in ("CHANNEL", "CHANNEL(NAME)"):
            return ch.name
        if upper == "CHANNEL(ENDPOINT)":
            return ch.endpoint
        if upper in ("UNIQUEID", "CHANNEL(UNIQUEID)"):
            return ch.uniqueid
        if upper == "CHANNEL(LINKEDID)":
            return ch.linkedid
        if upper == "CHANNEL(DTMF_FEATURES)":
            return ch.dtmf_features
        if upper == "CONTEXT":
            return ch.context
        if upper == "EXTEN":
            return ch.exten
        if fn in ch.variables:
            return ch.variables[fn]
        inherited = "__" + fn
        if inherited in ch.variables:
            return ch.variables[inherited]
        return self.globals.get(fn)

    def expand(self, ch: Channel | None, text: str) -> str:
        """Substitute ``${NAME}`` references (GET FULL VARIABLE, dialplan data)."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    if text.startswith("${", j):
                        depth += 1
                        j += 2
                        continue
                    if text[j] == "}":
                        depth -= 1
                    j += 1
                inner = self.expand(ch, text[i + 2 : j - 1])
                out.append(self.getvar(ch, inner) or "")
                i = j
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    # ------------------------------------------------------------------ hang-ups

    def soft_hangup(
        self, ch: Channel, cause: int, *, event: str | None = "SoftHangupRequest"
    ) -> None:
        """Ask a channel to hang up: the running app stops, AGI gets its HANGUP line."""
        if ch.destroyed:
            return
        if event is not None:
            self.emit_ch(event, ch, [("Cause", str(cause))])
        if not ch.dead:
            ch.dead = True
            ch.hangup_cause = cause
            ch.hup.set()
            ch.mailbox.put_nowait(("hangup",))
            if ch.bridge is not None:
                self.end_bridge(ch.bridge, first=ch)

    def remote_hangup(self, ch: Channel, cause: int = 16) -> None:
        """The far end (called party, caller, softphone) hung up."""
        if ch.destroyed or ch.dead:
            return
        peer = ch.peer
        if ch.tech == "Local" and peer is not None and not peer.destroyed:
            # The ;2 half runs the far end: it hangs up, the ;1 half is asked to [28].
            self.emit_ch("SoftHangupRequest", peer, [("Cause", str(cause))])
            peer.dead = True
            self.emit_ch("HangupRequest", ch, [("Cause", str(cause))])
            self.destroy(peer, cause)
            self.soft_hangup(ch, cause, event=None)
            ch.far_gone = True
        else:
            self.soft_hangup(ch, cause, event="HangupRequest")

    def destroy(self, ch: Channel, cause: int | None = None) -> None:
        """The channel is gone: Hangup event, unregister, stop its tasks."""
        if ch.destroyed:
            return
        peer = ch.peer
        cause = ch.hangup_cause if cause is None else cause
        if peer is not None and not peer.destroyed and ch.half == 1:
            # The ;1 half going takes the far end with it, with the same cause [21, 30].
            if not peer.dead:
                self.emit_ch("HangupRequest", peer, [("Cause", str(cause))])
                self.emit_ch("SoftHangupRequest", peer, [("Cause", "16")])
            self._hangup_event(peer, cause)
        if ch.bridge is not None:
            self.end_bridge(ch.bridge, first=ch)
        self._hangup_event(ch, cause)

    def _hangup_event(self, ch: Channel, cause: int) -> None:
        if ch.destroyed:
            return
        ch.destroyed = True
        ch.dead = True
        ch.hup.set()
        ch.mailbox.put_nowait(("hangup",))
        extra: list[Header] = [
            ("Cause", str(cause)),
            ("Cause-txt", CAUSE_TXT.get(cause, "Unknown")),
        ]
        if ch.tech_cause is not None:
            extra.append(("TechCause", str(ch.tech_cause)))
        self.emit_ch("Hangup", ch, extra)
        self.channels.pop(ch.name, None)
        if self.by_uid.get(ch.uniqueid) is ch:
            del self.by_uid[ch.uniqueid]
        self._check_idle()
        owner = ch.owner
        if owner is not None and hasattr(owner, "on_gone"):
            owner.on_gone(ch)
        current = asyncio.current_task()
        for t in ch.tasks:
            if t is not current and not t.done():
                t.cancel()
        # Break the channel <-> task/owner/peer cycles now rather than in a GC pass later:
        # under load, cyclic garbage made full collections the longest event-loop stalls.
        ch.tasks = []
        ch.owner = None
        ch.peer = None
        ch.pbx_task = None

    # ------------------------------------------------------------------ bridges

    def make_bridge(
        self,
        caller: Channel,
        peer: Channel,
        after_peer: tuple[str, str, int] | None,
        allow_disconnect: bool,
    ) -> Bridge:
        """Bridge ``peer`` (pulled out of its dialplan) with ``caller``: events as in [18, 28]."""
        bridge = Bridge(
            str(
                uuid.UUID(
                    int=self.rng(
                        "bridge", caller.uniqueid, peer.uniqueid, self.bus.count
                    ).getrandbits(128),
                    version=4,
                )
            )
        )
        bridge.done = asyncio.get_running_loop().create_future()
        bridge.caller = caller
        bridge.after[peer.name] = after_peer
        self.bus.emit("BridgeCreate", bridge.headers(0))
        if peer.in_waitexten:
            peer.priority += 1  # pulled out of WaitExten: it resumes at the next priority [19]
        for i, ch in enumerate((peer, caller), 1):
            bridge.members.append(ch)
            ch.bridge = bridge
            if ch is caller:
                ch.linkedid = peer.linkedid
            self.bus.emit("BridgeEnter", [*bridge.headers(i), *ch.snapshot()])
        self.setvar(peer, "BRIDGEPEER", caller.name)
        self.setvar(caller, "BRIDGEPEER", peer.name)
        self.setvar(caller, "BRIDGEPVTCALLID", str(uuid.UUID(int=random.getrandbits(128))))
        peer.conn_num, peer.conn_name = caller.cid_num, caller.cid_name
        caller.conn_num, caller.conn_name = peer.cid_num, peer.cid_name
        self.emit_ch("NewConnectedLine", peer)
        self.emit_ch("NewConnectedLine", caller)
        if allow_disconnect and "H" not in peer.dtmf_features:
            peer.dtmf_features += "H"  # sticks to the channel [30]
        peer.mailbox.put_nowait(("bridge", bridge))
        for ch in (peer, caller):
            ch.bridged.set()
            ch.was_bridged = True
        self.stats_counter["bridged"] += 1
        for ch in (peer, caller):
            owner = ch.owner
            if owner is not None and hasattr(owner, "on_bridged"):
                owner.on_bridged(ch, bridge)
        return bridge

    def end_bridge(self, bridge: Bridge, first: Channel) -> None:
        """Both leave the bridge (``first`` first) and it is destroyed [28, 30]."""
        if bridge.done is None or bridge.done.done():
            return
        order = [first] + [m for m in bridge.members if m is not first]
        for ch in bridge.members:
            if not ch.destroyed:
                self.setvar(ch, "BRIDGEPEER", "")
        caller = bridge.caller
        remaining = len(bridge.members)
        for ch in order:
            remaining -= 1
            self.bus.emit("BridgeLeave", [*bridge.headers(remaining), *ch.snapshot()])
            if ch is caller and not ch.destroyed:
                self.setvar(ch, "BRIDGERESULT", "SUCCESS")
            ch.bridge = None
            ch.bridged.clear()
        self.bus.emit("BridgeDestroy", bridge.headers(0))
        bridge.done.set_result(first.name)
        for ch in order:
            owner = ch.owner
            if owner is not None and hasattr(owner, "on_unbridged"):
                owner.on_unbridged(ch, bridge)

    # ------------------------------------------------------------------ DTMF

    async def press(self, ch: Channel, digits: str, gap: float | None = None) -> bool:
        """A phone sends DTMF: DTMFBegin/DTMFEnd per digit (280 ms), ``gap`` apart [28, 34].

        Returns False if the channel went away meanwhile.  A code typed while the channel
        waits in WaitExten becomes that extension; the disconnect code ends a bridge [30].
        """
        gap = self.profile.agents.typing_digit if gap is None else gap
        for i, digit in enumerate(digits):
            if ch.dead:
                return False
            self.emit_ch("DTMFBegin", ch, [("Digit", digit), ("Direction", "Received")])
            await self.clock.sleep(0.14)
            if ch.dead:
                return False
            self.emit_ch(
                "DTMFEnd", ch, [("Digit", digit), ("DurationMs", "280"), ("Direction", "Received")]
            )
            if i + 1 < len(digits):
                await self.clock.sleep(max(gap - 0.14, 0.0))
        if ch.bridge is not None:
            if digits == self.profile.asterisk.disconnect_code and "H" in ch.dtmf_features:
                self.end_bridge(ch.bridge, first=ch)
            return not ch.dead
        if ch.in_waitexten:
            ch.mailbox.put_nowait(("exten", digits))
        return not ch.dead

    # ------------------------------------------------------------------ Originate

    async def originate(self, req: OriginateRequest) -> OriginateResult:
        """Run one Originate to its end (answer + dialplan start, or failure)."""
        self._inflight += 1
        try:
            return await self._originate(req)
        finally:
            self._inflight -= 1
            self._check_idle()

    async def _originate(self, req: OriginateRequest) -> OriginateResult:
        self.stats_counter["originates"] += 1
        tech, _, resource = req.channel.partition("/")
        tech_up = tech.upper()
        if tech_up == "PJSIP" and resource:
            number, at, endpoint = resource.partition("@")
            if not at:
                endpoint, number = resource, ""
            known = self._endpoint_kind(endpoint)
            if known is None:
                # The endpoint lookup fails after a while, no channel is ever made [17].
                await self.clock.sleep(3.0)
                return self._bad_channel(req)
            return await self._dial_pjsip(req, endpoint, number, known)
        if tech_up == "LOCAL" and "@" in resource:
            exten, _, context = resource.partition("@")
            context = context.split("/", 1)[0]
            return await self._dial_local(req, exten, context)
        return self._bad_channel(req)

    def _endpoint_kind(self, endpoint: str) -> str | None:
        ap = self.profile.asterisk
        if endpoint in ap.trunks:
            return "trunk"
        if endpoint.startswith(ap.seat_prefix):
            num = endpoint[len(ap.seat_prefix) :]
            if num.isdigit() and len(num) == 3 and 1 <= int(num) <= ap.seat_count:
                return "seat"
        if endpoint.startswith(ap.supervisor_prefix):
            num = endpoint[len(ap.supervisor_prefix) :]
            if num.isdigit() and len(num) == 2 and 1 <= int(num) <= ap.supervisor_count:
                return "supervisor"
        return None

    def _bad_channel(self, req: OriginateRequest) -> OriginateResult:
        self.stats_counter["outcome_failed"] += 1
        if req.is_async:
            self._originate_response(req, None, REASON_FAILED, uniqueid="<unknown>")
        return OriginateResult(False, REASON_FAILED)

    def _originate_response(
        self, req: OriginateRequest, ch: Channel | None, reason: int, *, uniqueid: str | None = None
    ) -> None:
        if not req.is_async:
            return
        hdrs: list[Header] = []
        if req.action_id is not None:
            hdrs.append(("ActionID", req.action_id))
        hdrs.append(("Response", "Success" if reason == REASON_ANSWERED else "Failure"))
        hdrs.append(
            ("Channel", ch.name if ch is not None and reason == REASON_ANSWERED else req.channel)
        )
        if req.application:
            hdrs += [("Application", req.application), ("Data", req.data)]
        else:
            hdrs += [("Context", req.context or ""), ("Exten", req.exten or "")]
        hdrs.append(("Reason", str(reason)))
        hdrs.append(("Uniqueid", uniqueid or (ch.uniqueid if ch is not None else "<unknown>")))
        hdrs += [("CallerIDNum", req.caller_num), ("CallerIDName", req.caller_name)]
        self.bus.emit("OriginateResponse", hdrs)

    def _set_callerid(self, ch: Channel, req: OriginateRequest) -> None:
        ch.cid_num, ch.cid_name = req.caller_num, req.caller_name
        self.emit_ch(
            "NewCallerid", ch, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )
        ch.conn_num, ch.conn_name = req.caller_num, req.caller_name
        self.emit_ch("NewConnectedLine", ch)

    def _dial_begin(self, ch: Channel, dialstring: str) -> None:
        self.bus.emit("DialBegin", [*ch.snapshot("Dest"), ("DialString", dialstring)])

    def _dial_state(self, ch: Channel, event: str, status: str) -> None:
        self.bus.emit(event, [*ch.snapshot("Dest"), ("DialStatus", status)])

    def _plan_for(self, number: str, req: OriginateRequest) -> PartyPlan:
        rng = self.rng("call", number, req.channel_id or req.action_id or "", req.channel)
        return plan_call(self.profile, number, rng, self.profile.inbound.choices)

    async def _wait_outcome(self, ring: float, limit: float, ch: Channel) -> str:
        """Sleep until the far end decides (``ring``) or the Originate times out (``limit``)."""
        wait = min(ring, limit)
        try:
            await asyncio.wait_for(ch.hup.wait(), self.clock.real(wait))
            return "cancelled"
        except TimeoutError:
            pass
        return "decided" if ring <= limit else "timeout"

    async def _dial_pjsip(
        self, req: OriginateRequest, endpoint: str, number: str, kind: str
    ) -> OriginateResult:
        ap = self.profile.asterisk
        context = ap.trunks.get(endpoint, "dialer-seat" if kind == "seat" else "dialer-supervisor")
        role = {"trunk": "customer", "seat": "agent", "supervisor": "supervisor"}[kind]
        ch = self.new_channel("PJSIP", endpoint, uniqueid=req.channel_id, role=role)
        ch.context, ch.exten, ch.priority = context, "s", 1
        self.emit_ch("Newchannel", ch)
        self.emit_ch(
            "Newexten",
            ch,
            [("Extension", "s"), ("Application", "AppDial2"), ("AppData", "(Outgoing Line)")],
        )
        for name, value in reversed(req.variables):
            self.setvar(ch, name, value)
        self._set_callerid(ch, req)
        self._dial_begin(ch, resource_of(req.channel))
        plan: PartyPlan | None = None
        if kind == "trunk":
            plan = self._plan_for(number, req)
            ch.plan = plan
            ch.owner = PartyOwner(self, ch, plan)
            outcome, ring = plan.outcome, plan.ring
        elif kind == "seat":
            agent = self._agent_at(endpoint)
            if agent is None:
                outcome, ring = "noanswer", 3600.0
            elif not agent.accepts_calls():
                outcome, ring = "busy", 0.5
            else:
                ch.owner = agent
                outcome, ring = "answer", ANSWER_AGENT_SECONDS
        else:
            outcome, ring = "answer", 1.0
        rings = outcome not in ("congestion", "unallocated") and ring > 0
        if rings:
            await self.clock.sleep(0.002)
            self.newstate(ch, 5)
            self._dial_state(ch, "DialState", "RINGING")
        result = await self._wait_outcome(ring, req.timeout, ch)
        if result == "cancelled":
            # Hung up (AMI Hangup) while ringing: not recorded; Asterisk's dial loop reports
            # AST_CONTROL_HANGUP (Reason 1) and the dial ends CANCEL.
            self.stats_counter["outcome_cancelled"] += 1
            self._dial_state(ch, "DialEnd", "CANCEL")
            self._originate_response(req, ch, REASON_HANGUP)
            self.destroy(ch, ch.hangup_cause)
            return OriginateResult(False, REASON_HANGUP)
        if result == "timeout":
            self.stats_counter["outcome_noanswer"] += 1
            self._originate_response(req, ch, REASON_TIMEOUT)
            self.destroy(ch, 19)
            return OriginateResult(False, REASON_TIMEOUT)
        if outcome == "busy":
            self.stats_counter["outcome_busy"] += 1
            self._fail_pjsip(req, ch, 17, 486, "BUSY", REASON_FAILED)
            return OriginateResult(False, REASON_FAILED)
        if outcome in ("unavailable", "noanswer"):
            self.stats_counter["outcome_noanswer"] += 1
            # 480 from the network: the Originate's Reason 0 comes before DialEnd [14b].
            self.emit_ch("HangupRequest", ch, [("Cause", "19")])
            self._originate_response(req, ch, REASON_FAILED)
            self._dial_state(ch, "DialEnd", "NOANSWER")
            ch.tech_cause = 480
            self.destroy(ch, 19)
            return OriginateResult(False, REASON_FAILED)
        if outcome == "congestion":
            self.stats_counter["outcome_congestion"] += 1
            self._fail_pjsip(req, ch, 34, 503, "CONGESTION", REASON_FAILED)
            return OriginateResult(False, REASON_FAILED)
        if outcome == "unallocated":
            self.stats_counter["outcome_unallocated"] += 1
            self._fail_pjsip(req, ch, 1, 404, "NOANSWER", REASON_FAILED)
            return OriginateResult(False, REASON_FAILED)
        # answered
        self.stats_counter["answered"] += 1
        if plan is not None:
            self.stats_counter[f"answered_{plan.outcome}"] += 1
        self.newstate(ch, 6)
        self._dial_state(ch, "DialEnd", "ANSWER")
        self._originate_response(req, ch, REASON_ANSWERED)
        self._after_answer(req, ch)
        return OriginateResult(True, REASON_ANSWERED)

    def _fail_pjsip(
        self,
        req: OriginateRequest,
        ch: Channel,
        cause: int,
        tech_cause: int | None,
        status: str,
        reason: int,
    ) -> None:
        # HangupRequest with the cause, DialEnd, the failed OriginateResponse, Hangup [13, 15, 16].
        self.emit_ch("HangupRequest", ch, [("Cause", str(cause))])
        self._dial_state(ch, "DialEnd", status)
        self._originate_response(req, ch, reason)
        ch.tech_cause = tech_cause
        self.destroy(ch, cause)

    async def _dial_local(self, req: OriginateRequest, exten: str, context: str) -> OriginateResult:
        suffix = self._next_suffix("Local")
        endpoint = f"{exten}@{context}"
        one = self.new_channel("Local", endpoint, uniqueid=req.channel_id, half=1, suffix=suffix)
        two = self.new_channel(
            "Local",
            endpoint,
            uniqueid=req.other_channel_id,
            linkedid=one.uniqueid,
            half=2,
            suffix=suffix,
        )
        one.peer, two.peer = two, one
        for ch in (one, two):
            ch.context, ch.exten, ch.priority = context, exten, 1
        two.state = 4
        self.emit_ch("Newchannel", one)
        self.emit_ch("Newchannel", two)
        if context not in self.profile.asterisk.local_contexts:
            # No such context: created and destroyed at once [17].
            self.stats_counter["outcome_failed"] += 1
            self.emit_ch(
                "Newexten",
                one,
                [("Extension", exten), ("Application", "AppDial2"), ("AppData", "(Outgoing Line)")],
            )
            self._set_callerid(one, req)
            self._set_callerid(two, req)
            self._hangup_event(two, 0)
            self._hangup_event(one, 0)
            self._originate_response(req, None, REASON_FAILED, uniqueid=one.uniqueid)
            return OriginateResult(False, REASON_FAILED)
        self.emit_ch(
            "Newexten",
            one,
            [("Extension", exten), ("Application", "AppDial2"), ("AppData", "(Outgoing Line)")],
        )
        for name, value in reversed(req.variables):
            self.setvar(one, name, value)
        self._set_callerid(one, req)
        for name, value in req.variables:
            self.setvar(two, name, value)
        two.cid_num, two.cid_name = req.caller_num, req.caller_name
        self.emit_ch(
            "NewCallerid", two, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )
        two.conn_num, two.conn_name = req.caller_num, req.caller_name
        self.emit_ch("NewConnectedLine", two)
        self.bus.emit(
            "LocalBridge",
            [
                *one.snapshot("LocalOne"),
                *two.snapshot("LocalTwo"),
                ("Context", context),
                ("Exten", exten),
                ("LocalOptimization", "Yes"),
            ],
        )
        self._dial_begin(one, endpoint)
        plan = self._plan_for(exten, req)
        one.plan = plan
        one.owner = PartyOwner(self, one, plan)
        outcome = plan.outcome
        if outcome not in ("congestion", "unallocated") and plan.ring > 0:
            await self.clock.sleep(0.001)
            self.newstate(one, 5)
            self._dial_state(one, "DialState", "RINGING")
        result = await self._wait_outcome(plan.ring, req.timeout, one)
        if result == "cancelled":
            self.stats_counter["outcome_cancelled"] += 1
            self._dial_state(one, "DialEnd", "CANCEL")
            self._originate_response(req, None, REASON_HANGUP, uniqueid=one.uniqueid)
            self.destroy(one, one.hangup_cause)
            return OriginateResult(False, REASON_HANGUP)
        if result == "timeout":
            self.stats_counter["outcome_noanswer"] += 1
            # [14L]: ;2 asked to hang up (19), ;1 gone (19), the OriginateResponse, ;2 gone.
            self.emit_ch("HangupRequest", two, [("Cause", "19")])
            self.emit_ch("SoftHangupRequest", two, [("Cause", "16")])
            one.peer = None
            self._hangup_event(one, 19)
            self._originate_response(req, None, REASON_TIMEOUT, uniqueid=one.uniqueid)
            self._hangup_event(two, 19)
            return OriginateResult(False, REASON_TIMEOUT)
        if outcome in ("busy", "congestion", "unallocated", "unavailable", "noanswer"):
            return self._fail_local(req, one, two, outcome)
        self.stats_counter["answered"] += 1
        self.stats_counter[f"answered_{plan.outcome}"] += 1
        self.newstate(one, 6)
        two.state = 6
        two.priority = 2
        self.emit_ch("Newstate", two)
        self._dial_state(one, "DialEnd", "ANSWER")
        self._originate_response(req, one, REASON_ANSWERED)
        self._after_answer(req, one)
        return OriginateResult(True, REASON_ANSWERED)

    def _fail_local(
        self, req: OriginateRequest, one: Channel, two: Channel, outcome: str
    ) -> OriginateResult:
        self.stats_counter[f"outcome_{'noanswer' if outcome == 'unavailable' else outcome}"] += 1
        two.state = 7
        if outcome == "busy":
            # [13L]: OriginateResponse (Reason 5) first, DialEnd, ;2 gone with 17, ;1 with 0.
            self.emit_ch("Newstate", two)
            self._originate_response(req, None, REASON_BUSY, uniqueid=one.uniqueid)
            self._dial_state(one, "DialEnd", "BUSY")
            self._local_two_gone(two, 17)
            one.peer = None
            self._hangup_event(one, 0)
            return OriginateResult(False, REASON_BUSY)
        if outcome == "congestion":
            # [15L]: DialEnd, ;2 gone with 34, then OriginateResponse (Reason 8), ;1 with 0.
            self.emit_ch("Newstate", two)
            self._dial_state(one, "DialEnd", "CONGESTION")
            self._local_two_gone(two, 34)
            self._originate_response(req, None, REASON_CONGESTION, uniqueid=one.uniqueid)
            one.peer = None
            self._hangup_event(one, 0)
            return OriginateResult(False, REASON_CONGESTION)
        # 404/480 through a Local channel were not recorded: the far end hangs up unanswered.
        cause = 1 if outcome == "unallocated" else 19
        two.state = 4
        self._dial_state(one, "DialEnd", "NOANSWER")
        self._local_two_gone(two, cause)
        self._originate_response(req, None, REASON_FAILED, uniqueid=one.uniqueid)
        one.peer = None
        self._hangup_event(one, 0)
        return OriginateResult(False, REASON_FAILED)

    def _local_two_gone(self, two: Channel, cause: int) -> None:
        self.emit_ch("HangupRequest", two, [("Cause", "0")])
        self.emit_ch("SoftHangupRequest", two, [("Cause", "16")])
        self._hangup_event(two, cause)

    def _after_answer(self, req: OriginateRequest, ch: Channel) -> None:
        """The answered channel runs the Originate's Application or dialplan location."""
        owner = ch.owner
        if isinstance(owner, PartyOwner):
            self.spawn(owner.run(), owner=ch)
        elif owner is not None and hasattr(owner, "on_answered"):
            owner.on_answered(ch)
        if req.application:
            self.spawn(self.dialplan.run_application(ch, req.application, req.data), owner=ch)
        else:
            self.dialplan.start(ch, (req.context or "", req.exten or "s", req.priority))

    def seat_call(self, agent: Any) -> Channel:
        """A softphone dials the login extension from its seat (an inbound channel) [34]."""
        ap = self.profile.asterisk
        seat = agent.spec.seat
        ch = self.new_channel("PJSIP", seat, role="agent")
        ch.owner = agent
        ch.state = 4
        ch.context, ch.exten, ch.priority = "dialer-seat", ap.login_extension, 1
        ch.dnid = ap.login_extension
        digits = seat[len(ap.seat_prefix) :] if seat.startswith(ap.seat_prefix) else seat
        ch.cid_num, ch.cid_name = seat, f"Seat {digits}"
        self.stats_counter["agent_logins_dialled"] += 1
        self.emit_ch("Newchannel", ch)
        self.dialplan.start(ch, ("dialer-seat", ap.login_extension, 1))
        return ch

    def inbound_call(
        self, did: str, caller: str, plan: PartyPlan, caller_name: str | None = None
    ) -> Channel:
        """A caller on the carrier trunk dials ``did`` into ``dialer-inbound`` [26]."""
        trunk, context = next(iter(self.profile.asterisk.trunks.items()))
        ch = self.new_channel("PJSIP", trunk, role="inbound")
        ch.state = 4
        ch.context, ch.exten, ch.priority = context, did, 1
        ch.dnid = did
        ch.cid_num, ch.cid_name = caller, caller_name or caller
        ch.plan = plan
        owner = PartyOwner(self, ch, plan)
        ch.owner = owner
        self.stats_counter["inbound_calls"] += 1
        self.emit_ch("Newchannel", ch)
        self.spawn(owner.run(), owner=ch)
        self.dialplan.start(ch, (context, did, 1))
        return ch

    def _agent_at(self, endpoint: str) -> Any:
        for agent in self._agents:
            if agent.spec.seat == endpoint:
                return agent
        return None


def resource_of(dial: str) -> str:
    """The part after ``Tech/`` (DialBegin's DialString) [12]."""
    return dial.partition("/")[2]


class PartyOwner:
    """Drives a called party or inbound caller: hangs up per its plan, answers GET DATA."""

    def __init__(self, pbx: SimPbx, ch: Channel, plan: PartyPlan) -> None:
        self.pbx = pbx
        self.ch = ch
        self.plan = plan
        self.bridge_ended = asyncio.Event()

    async def run(self) -> None:
        """From answer to hang-up: AMD window, patience while waiting, talk once bridged."""
        pbx, ch, plan = self.pbx, self.ch, self.plan
        if plan.outcome == "machine":
            await self._sleep_or_gone(plan.machine_message)
            pbx.remote_hangup(ch, 16)
            return
        if plan.amd_status == "HANGUP":
            await self._sleep_or_gone(plan.amd_time)
            pbx.remote_hangup(ch, 16)
            return
        # A person answers, says hello and listens: impatience starts after the greeting (the
        # AMD window), which is also where the 2-second rule starts counting.
        if plan.amd_time > 0 and ch.bridge is None:
            try:
                await asyncio.wait_for(ch.bridged.wait(), pbx.clock.real(plan.amd_time))
            except TimeoutError:
                pass
        talked = 0.0
        while not ch.dead:
            if ch.bridge is None:
                try:
                    await asyncio.wait_for(ch.bridged.wait(), pbx.clock.real(plan.patience))
                except TimeoutError:
                    pbx.stats_counter["party_gave_up"] += 1
                    pbx.remote_hangup(ch, 16)
                    return
                continue
            bridge = ch.bridge
            assert bridge is not None and bridge.done is not None
            start = pbx.clock.now()
            left = max(plan.talk - talked, 0.0)
            try:
                await asyncio.wait_for(asyncio.shield(bridge.done), pbx.clock.real(left))
                talked += pbx.clock.now() - start
                continue  # the agent left first; wait again (patience) or be hung up
            except TimeoutError:
                pass
            others = [m for m in bridge.members if m is not ch]
            agent_ch = others[0] if others else None
            if (
                not plan.party_hangs_up
                and agent_ch is not None
                and "H" in agent_ch.dtmf_features
                and not agent_ch.dead
            ):
                pbx.stats_counter["agent_disconnects"] += 1
                await pbx.press(agent_ch, pbx.profile.asterisk.disconnect_code, gap=0.3)
                talked = plan.talk
                # The controller decides now; a person left alone hangs up soon.
                await self._sleep_or_gone(3.0)
                pbx.remote_hangup(ch, 16)
                return
            pbx.remote_hangup(ch, 16)
            return

    async def _sleep_or_gone(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.ch.hup.wait(), self.pbx.clock.real(seconds))
        except TimeoutError:
            pass

    def dtmf_for(self, ch: Channel, prompt: str) -> tuple[str, float]:
        """What the person types at a GET DATA prompt, and after how long."""
        return self.plan.dtmf + "#", 1.5
