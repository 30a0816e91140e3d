"""FastAGI route ``ivr/main?did=...``: run the DID's IVR flow for a caller who dialled in.

The flow itself is the pure :class:`~dialer.domain.ivr.IvrCall`; this module carries out its
actions on an :class:`~dialer.agi.server.AgiSession` and feeds the outcomes back:

* prompts: ``STREAM FILE`` (digits interrupt a menu prompt) and ``GET DATA`` for the last one;
  a text prompt is rendered by espeak-ng when installed (:mod:`dialer.agi_scripts.tts`);
* record: ``EXEC Record(<dir>/<call>-<n>.wav,<silence>,<max>,k)`` then ``RECORD_STATUS``; with
  option ``k`` a caller who hangs up mid-message still leaves it;
* callback: a scheduled callback for the caller's number, through the :class:`InboundRecorder`;
* queue: ``EXEC StartMusicOnHold`` (it returns at once and the music goes on while we wait for
  an agent without any AGI command pending), the position at intervals, then the same hand-off
  as outbound: ``EXEC Bridge <agent channel>,hF(dialer-agent-wrapup^s^1)`` and BRIDGERESULT
  (a vanished agent also answers ``200 result=0``: trace 31, so the caller is requeued);
* hang-up: ``STREAM FILE`` answers ``result=-1``, ``GET DATA`` raises AgiHangup, a command after
  the ``HANGUP`` line gets 511 (trace 22), and while nothing is pending ``wait_hangup`` fires.

Whatever happens, every call ends in exactly one ledger record (DID, caller, path, answers,
result), written in ``finally`` with a synchronous call so a shutdown cannot lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dialer.agi.errors import AgiDeadChannel, AgiHangup
from dialer.agi_scripts.inbound_desk import AgentOffer, QueueDesk, QueueTicket
from dialer.domain import ivr
from dialer.domain.inbound_queue import LeaveReason, QueuedCaller

if TYPE_CHECKING:
    from dialer.agi.server import AgiSession
    from dialer.agi_scripts.tts import TextPrompts
    from dialer.config import InboundSettings, Settings

log = logging.getLogger(__name__)

ROUTE = "ivr/main"
ESCAPE_DIGITS = "0123456789*#"
FILLER = "silence/1"  # GET DATA needs a file; this one ships with Asterisk's core sounds
WRAPUP_TARGET = "dialer-agent-wrapup^s^1"
# EXEC Bridge to a vanished agent returns at once (trace 31: single-digit ms); one still running
# after this long has formed its bridge, so the caller counts as answered from the send time.
BRIDGE_SETTLE_SECONDS = 0.5
# Asterisk's stock queue sounds, used unless the flow defines these prompt ids itself.
POSITION_PROMPTS = ("queue-position", "queue-position-after")
STOCK_POSITION = {"queue-position": "queue-thereare", "queue-position-after": "queue-callswaiting"}


def load_flows(path: str | None, default_tz: str = "UTC") -> ivr.FlowSet:
    """Read and validate a flow file (``.toml``, ``.yaml``/``.yml``); None: the shipped example."""
    if not path:
        text = resources.files(__package__).joinpath("default_ivr.toml").read_text("utf-8")
        return ivr.parse_flow_text(text, "toml", "default_ivr.toml (shipped)", default_tz)
    p = Path(path)
    fmt = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(p.suffix.lower())
    if fmt is None:
        raise ivr.FlowError(path, ["the file name must end in .toml, .yaml or .yml"])
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ivr.FlowError(path, [f"cannot read: {exc.strerror}"]) from None
    return ivr.parse_flow_text(text, fmt, path, default_tz)


# --------------------------------------------------------------------------- ports


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A caller asked to be called back."""

    call_id: str
    number: str
    due_at: dt.datetime
    campaign: str | None
    language: str
    did: str


@dataclass(frozen=True, slots=True)
class InboundCallEnded:
    """The ledger record of one inbound call (direction ``inbound``)."""

    call_id: str
    did: str
    caller: str
    flow: str
    language: str
    started_at: dt.datetime
    ended_at: dt.datetime
    hours_status: str
    path: tuple[str, ...]
    answers: dict[str, str]
    result: str
    last_node: str | None
    label: str | None
    agent: str | None
    queue_wait_seconds: float | None
    recordings: tuple[str, ...]
    callbacks: int


class InboundRecorder(Protocol):
    """Where inbound calls and callback requests go (the ledger, or memory in tests)."""

    def call_ended(self, record: InboundCallEnded) -> None:
        """Record a finished call; must not block (queue it)."""
        ...

    async def request_callback(self, request: CallbackRequest) -> None:
        """Create a scheduled callback; raise if it could not be stored."""
        ...


@dataclass
class MemoryRecorder:
    """Keeps inbound records and callback requests in lists (tests, the demo without a DB)."""

    calls: list[InboundCallEnded] = field(default_factory=list)
    callbacks: list[CallbackRequest] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def call_ended(self, record: InboundCallEnded) -> None:
        """Keep the record."""
        self.calls.append(record)
        self.ended.set()

    async def request_callback(self, request: CallbackRequest) -> None:
        """Keep the request."""
        self.callbacks.append(request)


class _CallerGone(Exception):
    """The caller hung up (seen in a reply rather than as an exception)."""


# --------------------------------------------------------------------------- the handler


class IvrHandler:
    """The ``ivr/main`` FastAGI handler: one instance serves every inbound call."""

    def __init__(
        self,
        flows: ivr.FlowSet,
        desk: QueueDesk,
        recorder: InboundRecorder,
        settings: InboundSettings,
        tts: TextPrompts | None = None,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        """``wall_clock`` decides business hours and timestamps (aware datetimes)."""
        self.flows = flows
        self.desk = desk
        self.recorder = recorder
        self.settings = settings
        self.tts = tts
        self.wall_clock = wall_clock

    async def __call__(self, session: AgiSession) -> None:
        """Run the flow for this caller; always leave one ledger record."""
        did = session.params.get("did") or session.env.get("agi_extension", "")
        caller = session.env.get("agi_callerid", "")
        call_id = session.uniqueid or session.env.get("agi_uniqueid", "")
        try:
            call = ivr.IvrCall(self.flows, did, caller, self.wall_clock())
        except KeyError:
            log.warning("IVR: no flow for DID %r and no default entry; hanging up", did)
            self._record_unrouted(call_id, did, caller)
            await session.hangup()
            return
        run = _Run(self, session, call, call_id)
        try:
            await run.go()
        except (AgiHangup, AgiDeadChannel, _CallerGone):
            if run.ticket is not None and run.queue_started is not None:
                call.record.queue_wait_seconds = self.desk.now() - run.queue_started
            call.hung_up(in_queue=run.ticket is not None)
        except asyncio.CancelledError:
            if run.bridged is not None:  # stopped during the conversation: it was answered
                call.answered(*run.bridged)
            call.fail("shutdown")
            raise
        except Exception as exc:  # the outer loop of an adapter: record it, never lose the call
            log.exception("IVR %s on %s failed", call_id, session.channel)
            call.fail(f"error: {type(exc).__name__}")
        finally:
            run.leave_queue()
            self.recorder.call_ended(_ended(call_id, call, self.wall_clock()))

    def _record_unrouted(self, call_id: str, did: str, caller: str) -> None:
        now = self.wall_clock()
        self.recorder.call_ended(
            InboundCallEnded(
                call_id=call_id,
                did=did,
                caller=caller,
                flow="",
                language=self.flows.default_language,
                started_at=now,
                ended_at=now,
                hours_status="",
                path=(),
                answers={},
                result=ivr.IvrResult.FAILED.value,
                last_node=None,
                label="unknown_did",
                agent=None,
                queue_wait_seconds=None,
                recordings=(),
                callbacks=0,
            )
        )


def _ended(call_id: str, call: ivr.IvrCall, now: dt.datetime) -> InboundCallEnded:
    r = call.record
    result = r.result or ivr.IvrResult.FAILED
    return InboundCallEnded(
        call_id=call_id,
        did=r.did,
        caller=r.caller,
        flow=r.flow,
        language=r.language,
        started_at=r.started_at,
        ended_at=now,
        hours_status=r.hours_status,
        path=tuple(r.path),
        answers=dict(r.answers),
        result=result.value,
        last_node=r.last_node,
        label=r.label,
        agent=r.agent,
        queue_wait_seconds=r.queue_wait_seconds,
        recordings=tuple(r.recordings),
        callbacks=r.callbacks,
    )


class _Run:
    """One call: carries out the machine's actions on the session."""

    def __init__(
        self, handler: IvrHandler, session: AgiSession, call: ivr.IvrCall, call_id: str
    ) -> None:
        self.h = handler
        self.s = session
        self.call = call
        self.call_id = call_id
        self.ticket: QueueTicket | None = None
        self.queue_started: float | None = None
        self.bridged: tuple[str, float] | None = None  # (agent, wait) once the bridge formed
        self.language = ""
        self.recording_no = 0

    async def go(self) -> None:
        action = self.call.start()
        while not isinstance(action, ivr.Finish):
            await self._sync_language()
            outcome = await self._do(action)
            action = self.call.resume(outcome)
        await self._finish(action)

    def leave_queue(self) -> None:
        """A caller still in line when the run ends (hang-up, error) abandoned it."""
        if self.ticket is not None:
            self.ticket.leave(LeaveReason.ABANDONED)
            self.ticket = None

    async def _sync_language(self) -> None:
        # Asterisk's own sounds (numbers, queue position) follow the caller's language.
        if self.call.language != self.language:
            self.language = self.call.language
            await self.s.set_variable("CHANNEL(language)", self.language)

    async def _do(self, action: ivr.Action) -> ivr.Outcome:
        if isinstance(action, ivr.Say):
            for pid in action.prompts:
                await self._play(pid)
            return ivr.Done()
        if isinstance(action, ivr.Ask):
            return ivr.Digits(await self._ask(action))
        if isinstance(action, ivr.RecordMessage):
            return await self._record(action)
        if isinstance(action, ivr.RequestCallback):
            return await self._callback(action)
        if isinstance(action, ivr.JoinQueue):
            return await self._queue(action)
        raise TypeError(f"unknown IVR action {action!r}")

    # -- prompts and digits

    async def _file(self, pid: str) -> str | None:
        prompt = self.h.flows.prompt(self.call.language, pid)
        if prompt.file:
            return prompt.file
        if prompt.text and self.h.tts is not None and self.h.settings.text_to_speech:
            return await self.h.tts.render(self.call.language, prompt.text)
        return None

    async def _play(self, pid: str, escape: str = "") -> str:
        """Play one prompt; return the digit that interrupted it ('' if none)."""
        name = await self._file(pid)
        if name is None:
            log.debug("IVR prompt %r (%s) has no sound; skipped", pid, self.call.language)
            return ""
        reply = await self.s.stream_file(name, escape)
        code = reply.result_int
        if code == -1:
            raise _CallerGone(f"hung up during prompt {pid}")
        return chr(code) if code and code > 0 else ""

    async def _ask(self, action: ivr.Ask) -> str:
        digits = ""
        for pid in action.prompts[:-1]:
            digits = await self._play(pid, ESCAPE_DIGITS)
            if digits:
                break
        if digits == "#":
            return ""  # '#' ends input: nothing was entered
        if len(digits) >= action.max_digits:
            return digits
        prompt = None if digits else await self._file(action.prompts[-1])
        got = await self.s.get_data(
            prompt or FILLER, int(action.timeout_seconds * 1000), action.max_digits - len(digits)
        )
        return digits + re.sub(r"[^0-9*#]", "", got)

    # -- record, callback

    async def _record(self, action: ivr.RecordMessage) -> ivr.Outcome:
        for pid in action.prompts:
            await self._play(pid)
        self.recording_no += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.call_id)
        path = f"{self.h.settings.recordings_dir.rstrip('/')}/{safe}-{self.recording_no}"
        options = "k" if action.beep else "kq"  # k: keep what was said if the caller hangs up
        reply = await self.s.exec(
            "Record", f"{path}.wav", str(action.silence_seconds), str(action.max_seconds), options
        )
        status = await self.s.get_variable("RECORD_STATUS")
        if status in (None, "ERROR"):
            log.warning("IVR %s: Record failed (%s, %s)", self.call_id, status, reply.result)
            if self.s.hung_up:
                raise _CallerGone("hung up during record")
            return ivr.Recorded(None)
        if status == "HANGUP" or self.s.hung_up or reply.result_int == -1:
            self.call.record.recordings.append(f"{path}.wav")
            raise _CallerGone("hung up while recording (message kept)")
        return ivr.Recorded(f"{path}.wav")

    async def _callback(self, action: ivr.RequestCallback) -> ivr.Outcome:
        due = self.h.wall_clock() + dt.timedelta(minutes=action.delay_minutes)
        request = CallbackRequest(
            call_id=self.call_id,
            number=action.number,
            due_at=due,
            campaign=action.campaign or self.h.settings.callback_campaign or None,
            language=action.language,
            did=self.call.record.did,
        )
        try:
            await self.h.recorder.request_callback(request)
        except Exception as exc:  # stored nowhere: the flow's on_failure path, not a dead end
            log.warning("IVR %s: callback request not stored: %s", self.call_id, exc)
            return ivr.Refused(str(exc))
        return ivr.Done()

    # -- the queue

    async def _queue(self, action: ivr.JoinQueue) -> ivr.Outcome:
        for pid in action.prompts:
            await self._play(pid)
        desk, st = self.h.desk, self.h.settings
        if not desk.is_open(action.queue):
            return ivr.QueueOutcome("closed")  # paused by a supervisor: the closed message
        if not desk.can_serve(action.skill):
            return ivr.QueueOutcome("no_agents")
        max_wait = action.max_wait_seconds or st.max_wait_seconds
        started = self.queue_started = desk.now()
        caller = QueuedCaller(self.call_id, started, action.priority, action.skill, action.queue)
        self.ticket = ticket = desk.join(caller)
        next_announce = started + st.position_announce_seconds
        music = False
        while True:
            now = desk.now()
            if now - started >= max_wait and ticket.leave(LeaveReason.TIMEOUT):
                self.ticket = None
                await self._music(False, music)
                return ivr.QueueOutcome("timeout", now - started)
            if not music:
                music = await self._music(True, music)
            budget = max(0.0, min(started + max_wait, next_announce) - now)
            offer = await self._offer_or_hangup(ticket, desk.real(budget))
            if self.s.hung_up:
                raise _CallerGone("hung up in the queue")
            if offer is not None:
                music = await self._music(False, music)
                if await self._bridge(ticket, offer):
                    self.ticket = None
                    # the same wait the queue's figures count: until the Bridge was sent
                    assert self.bridged is not None
                    return ivr.QueueOutcome("answered", self.bridged[1], offer.agent_id)
                continue
            if desk.now() >= next_announce:
                next_announce += st.position_announce_seconds
                position = ticket.position()
                if position > 0:
                    music = await self._music(False, music)
                    await self._announce(position)

    async def _music(self, on: bool, playing: bool) -> bool:
        if on and not playing:
            await self.s.exec("StartMusicOnHold", self.h.settings.music_class)
        elif not on and playing:
            await self.s.exec("StopMusicOnHold")
        return on

    async def _offer_or_hangup(self, ticket: QueueTicket, budget: float) -> AgentOffer | None:
        offer_task = asyncio.ensure_future(ticket.wait_offer(budget))
        hangup_task = asyncio.ensure_future(self.s.wait_hangup(budget))
        try:
            await asyncio.wait({offer_task, hangup_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (offer_task, hangup_task):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return offer_task.result() if offer_task.done() and not offer_task.cancelled() else None

    async def _bridge(self, ticket: QueueTicket, offer: AgentOffer) -> bool:
        sent = self.h.desk.now()
        wait = max(0.0, sent - offer.match.caller.enqueued_at)
        exec_task = asyncio.ensure_future(
            self.s.exec("Bridge", offer.channel, f"hF({WRAPUP_TARGET})")
        )
        connected = False
        done, _ = await asyncio.wait({exec_task}, timeout=BRIDGE_SETTLE_SECONDS)
        if not done:
            ticket.connected(sent)  # still bridged after the settle time: the bridge formed
            connected = True
            self.bridged = (offer.agent_id, wait)
        await exec_task
        result = await self.s.get_variable("BRIDGERESULT")
        if connected or result == "SUCCESS":
            if not connected:
                ticket.connected(sent)
                self.bridged = (offer.agent_id, wait)
            return True
        log.info("IVR %s: bridge to %s gave %s; back in line", self.call_id, offer.channel, result)
        if self.s.hung_up:
            raise _CallerGone("hung up during the hand-off")
        ticket.requeue(result or "FAILURE")
        return False

    async def _announce(self, position: int) -> None:
        lang_prompts = self.h.flows.prompts.get(self.call.language, {})
        for pid in POSITION_PROMPTS:
            if pid in lang_prompts:
                await self._play(pid)
            else:
                reply = await self.s.stream_file(STOCK_POSITION[pid], "")
                if reply.result_int == -1:
                    raise _CallerGone("hung up during the position announcement")
            if pid == POSITION_PROMPTS[0]:
                await self.s.exec("SayNumber", str(position))

    # -- the end

    async def _finish(self, action: ivr.Finish) -> None:
        with contextlib.suppress(AgiDeadChannel):
            await self.s.set_variable("IVR_RESULT", action.label or action.result.value)
        if not self.s.hung_up:
            try:
                for pid in action.prompts:
                    await self._play(pid)
            except (_CallerGone, AgiDeadChannel):
                return  # the call already has its result; a goodbye cut short changes nothing
        await self.s.hangup()


def register(
    router: Any, engine: Any, settings: Settings, db: Any, writer: Any, owner: str
) -> IvrHandler:
    """Build the ``ivr/main`` route for ``dialer run`` (the flow file is validated here: a flow
    with a problem stops the controller's start with the list of problems)."""
    from dialer.agi_scripts.inbound_store import DbInboundRecorder
    from dialer.agi_scripts.tts import TextPrompts
    from dialer.engine.inbound import EngineDesk

    inbound = settings.inbound
    flows = load_flows(inbound.flows_file or None, settings.site.timezone)
    recorder = DbInboundRecorder(db, writer, settings.site, inbound.callback_campaign, owner)
    tts = TextPrompts(inbound.prompt_cache_dir) if inbound.text_to_speech else None
    handler = IvrHandler(flows, EngineDesk(engine), recorder, inbound, tts)
    engine.inbound.skills_loader = recorder.agent_skills  # languages + skills from the database
    router.add(ROUTE, handler)
    log.info(
        "IVR: %s, %d flow(s), DIDs %s, text prompts %s",
        flows.source,
        len(flows.flows),
        ", ".join(flows.dids),
        "by espeak-ng" if tts is not None and tts.available else "silent (no espeak-ng)",
    )
    return handler
