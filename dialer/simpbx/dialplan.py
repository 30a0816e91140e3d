"""Our dialplan (docs/dialplan.md), executed by the simulator, and the FastAGI client.

Each context of the contract is a small coroutine that walks its priorities in order and emits
the ``Newexten`` Asterisk would emit for each application, so the controller sees the same
events as with the rendered extensions.conf.  Nothing here invents contexts of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from dialer.simpbx import agi_peer
from dialer.simpbx.channels import Bridge, Channel

if TYPE_CHECKING:
    from dialer.simpbx.pbx import SimPbx

Loc = tuple[str, str, int]
Next = Loc | None
ContextFn = Callable[[Channel, str, int], Awaitable[Next]]

GET_DATA_DEFAULT_TIMEOUT = 6.0  # seconds, when GET DATA has no timeout argument


class Dialplan:
    """Runs channels through the contract's contexts and executes FastAGI sessions."""

    def __init__(self, pbx: SimPbx) -> None:
        self.pbx = pbx
        ap = pbx.profile.asterisk
        self.codes = {
            ap.pause_code: "pause",
            ap.unpause_code: "unpause",
            ap.next_code: "next",
            ap.logout_code: "logout",
        }
        self.contexts: dict[str, ContextFn] = {
            "dialer-out": self.ctx_dialer_out,
            "dialer-seat": self.ctx_dialer_seat,
            "dialer-agent-loop": self.ctx_agent_loop,
            "dialer-agent-wrapup": self.ctx_agent_wrapup,
            "dialer-agent-notice": self.ctx_agent_notice,
            "dialer-inbound": self.ctx_dialer_inbound,
            "dialer-supervisor": self.ctx_dialer_supervisor,
        }
        self._command_id = 600000000

    # ------------------------------------------------------------------ engine

    def start(self, ch: Channel, loc: Loc) -> None:
        """Start (or restart, for Redirect) the channel's dialplan at ``loc``."""
        old = ch.pbx_task
        if old is not None and not old.done():
            old.cancel()
        ch.pbx_task = self.pbx.spawn(self.run(ch, loc), owner=ch)

    async def run(self, ch: Channel, loc: Loc) -> None:
        """Execute from ``loc`` until the channel hangs up; then the ``h`` extension, Hangup."""
        if ch.pbx_task is None:
            ch.pbx_task = asyncio.current_task()
        nxt: Next = loc
        while nxt is not None and not ch.destroyed and not ch.dead:
            fn = self.contexts.get(nxt[0])
            if fn is None:
                break  # no such context: Asterisk hangs the channel up
            nxt = await fn(ch, nxt[1], nxt[2])
        if ch.destroyed:
            return
        if ch.far_gone:
            ch.far_gone = False
            self.pbx.emit_ch("SoftHangupRequest", ch, [("Cause", "16")])
        if ch.context == "dialer-out":
            await self.ctx_dialer_out(ch, "h", 1)
        self.pbx.destroy(ch)

    def step(self, ch: Channel, context: str, exten: str, prio: int, app: str, data: str) -> None:
        """Move to a priority and announce its application (Newexten)."""
        ch.context, ch.exten, ch.priority = context, exten, prio
        ch.app, ch.appdata = app, data
        self.pbx.emit_ch(
            "Newexten", ch, [("Extension", exten), ("Application", app), ("AppData", data)]
        )
        owner = ch.owner
        if ch.role == "agent" and owner is not None and hasattr(owner, "on_step"):
            owner.on_step(ch, context, app)

    async def wait(self, ch: Channel, seconds: float) -> bool:
        """Sleep in simulated time; False if the channel hung up meanwhile."""
        if ch.dead:
            return False
        try:
            await asyncio.wait_for(ch.hup.wait(), self.pbx.clock.real(seconds))
        except TimeoutError:
            return not ch.dead
        return False

    def var(self, ch: Channel, name: str) -> str:
        """A variable's value, empty if unset."""
        return self.pbx.getvar(ch, name) or ""

    def user_event(self, ch: Channel, data: str) -> None:
        """``UserEvent(Name,Key: value,...)``: the UserEvent event with those headers."""
        name, *pairs = data.split(",")
        extra = [("UserEvent", name)]
        for pair in pairs:
            key, _, value = pair.partition(":")
            extra.append((key.strip(), value.strip()))
        self.pbx.emit_ch("UserEvent", ch, extra)
        self.pbx.stats_counter[f"userevent_{name}"] += 1

    def prompt_seconds(self, files: str) -> float:
        """How long a sound (or ``a&b`` list) plays."""
        ap = self.pbx.profile.asterisk
        return sum(ap.prompt_lengths.get(f, ap.prompt_seconds) for f in files.split("&") if f)

    async def playback(self, ch: Channel, files: str) -> bool:
        """Play sounds; False if the channel hung up during them."""
        ok = await self.wait(ch, self.prompt_seconds(files))
        if ok:
            self.pbx.setvar(ch, "PLAYBACKSTATUS", "SUCCESS")
        return ok

    def answer(self, ch: Channel) -> None:
        """Answer() on a channel not up yet."""
        if ch.state != 6:
            self.pbx.newstate(ch, 6)

    def agi_data(self, path: str) -> str:
        """The AGI() argument for a route: ``agi://host:port/path?query``."""
        return f"{self.pbx.agi_base}/{path}"

    # ------------------------------------------------------------------ contexts

    async def ctx_dialer_out(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-out``: AMD, then FastAGI outbound/answered; abandonment if it is down."""
        c = "dialer-out"
        callid = self.var(ch, "CALLID")
        if exten == "h":
            amd = self.var(ch, "AMDSTATUS")
            self.step(ch, c, "h", 1, "NoOp", f"dialer-out: {callid} hung up, AMDSTATUS={amd}")
            return None
        if exten != "s":
            return None
        status = ""
        if prio <= 1:
            self.step(ch, c, "s", 1, "NoOp", f"dialer-out: call {callid} answered on {ch.name}")
            prio = 2
        if prio == 2:
            skip = self.var(ch, "DIALER_AMD") != "1"
            self.step(ch, c, "s", 2, "GotoIf", f"{int(skip)}?agi")
            prio = 5 if skip else 3
        if prio == 3:
            self.step(ch, c, "s", 3, "AMD", "")
            if not await self.amd(ch):
                return None
            prio = 4
        if prio == 4:
            data = (
                f"DialerAMD,Call: {callid},AMDStatus: {self.var(ch, 'AMDSTATUS')},"
                f"AMDCause: {self.var(ch, 'AMDCAUSE')}"
            )
            self.step(ch, c, "s", 4, "UserEvent", data)
            self.user_event(ch, data)
            prio = 5
        if prio == 5:
            url = self.agi_data(f"outbound/answered?call={callid}")
            self.step(ch, c, "s", 5, "AGI", url)
            status = await self.agi(ch, url)
            if ch.dead:
                return None
            prio = 6
        if prio == 6:
            failed = (status or self.var(ch, "AGISTATUS")) == "FAILURE"
            self.step(ch, c, "s", 6, "GotoIf", f"{int(failed)}?abandon")
            prio = 8 if failed else 7
        if prio == 7:
            self.step(ch, c, "s", 7, "Hangup", "")
            ch.hangup_cause = 16
            return None
        if prio == 8:
            data = f"DialerAbandon,Call: {callid},AGISTATUS: {self.var(ch, 'AGISTATUS')}"
            self.step(ch, c, "s", 8, "UserEvent", data)
            self.user_event(ch, data)
            prio = 9
        if prio == 9:
            prompt = self.var(ch, "ABANDON_PROMPT")
            self.step(ch, c, "s", 9, "Playback", prompt)
            if not await self.playback(ch, prompt):
                return None
            prio = 10
        self.step(ch, c, "s", 10, "Hangup", "16")
        ch.hangup_cause = 16
        return None

    async def amd(self, ch: Channel) -> bool:
        """AMD(): the verdict after the plan's analysis time; HANGUP if the party left [21, 33]."""
        plan = ch.plan
        if plan is None or not plan.amd_status:
            status, cause, seconds = "NOTSURE", "TOOLONG-5000", 5.0
        else:
            status, cause, seconds = plan.amd_status, plan.amd_cause, plan.amd_time
        completed = await self.wait(ch, seconds)
        if not completed or status == "HANGUP":
            status, cause = "HANGUP", ""
        self.pbx.stats_counter[f"amd_{status}"] += 1
        if ch.destroyed:
            return False
        self.pbx.setvar(ch, "AMDSTATUS", status)
        self.pbx.setvar(ch, "AMDCAUSE", cause)
        return completed and not ch.dead

    async def ctx_dialer_seat(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-seat``: the login extension runs FastAGI agent/login, then the hold loop."""
        c = "dialer-seat"
        ap = self.pbx.profile.asterisk
        if exten == "i" or exten != ap.login_extension:
            if exten != "i":
                self.pbx.setvar(ch, "INVALID_EXTEN", exten)
            self.step(ch, c, "i", 1, "Playback", "invalid")
            if not await self.playback(ch, "invalid"):
                return None
            self.step(ch, c, "i", 2, "Hangup", "16")
            ch.hangup_cause = 16
            return None
        status = ""
        if prio <= 1:
            cid = f'"{ch.cid_name}" <{ch.cid_num}>'
            self.step(ch, c, exten, 1, "NoOp", f"dialer-seat: login from {cid} on {ch.name}")
            prio = 2
        if prio == 2:
            self.step(ch, c, exten, 2, "Answer", "")
            self.answer(ch)
            prio = 3
        if prio == 3:
            url = self.agi_data(f"agent/login?seat={ch.endpoint}")
            self.step(ch, c, exten, 3, "AGI", url)
            status = await self.agi(ch, url)
            if ch.dead:
                return None
            prio = 4
        if prio == 4:
            # AGENT_STATE before AGISTATUS, as docs/dialplan.md says: a real Asterisk reports
            # FAILURE after any failed AGI command, even in a login that succeeded.
            ok = self.var(ch, "AGENT_STATE") in ("READY", "PAUSED")
            self.step(ch, c, exten, 4, "GotoIf", f"{int(ok)}?dialer-agent-loop,s,1")
            if ok:
                return ("dialer-agent-loop", "s", 1)
            prio = 5
        if prio == 5:
            down = (status or self.var(ch, "AGISTATUS")) == "FAILURE"
            self.step(ch, c, exten, 5, "GotoIf", f"{int(down)}?down")
            prio = 8 if down else 6
        if prio in (6, 7):
            if prio == 6:
                self.step(ch, c, exten, 6, "Playback", "agent-incorrect&vm-goodbye")
                if not await self.playback(ch, "agent-incorrect&vm-goodbye"):
                    return None
            self.step(ch, c, exten, 7, "Hangup", "16")
            ch.hangup_cause = 16
            return None
        self.step(ch, c, exten, 8, "Playback", "ss-noservice")
        if not await self.playback(ch, "ss-noservice"):
            return None
        self.step(ch, c, exten, 9, "Hangup", "16")
        ch.hangup_cause = 16
        return None

    async def ctx_agent_loop(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-agent-loop``: WaitExten holds the agent; codes are extensions [28, 34]."""
        c = "dialer-agent-loop"
        agent_id = self.var(ch, "AGENTID")
        if exten == "s":
            if prio <= 1:
                self.step(
                    ch, c, "s", 1, "NoOp", f"dialer-agent-loop: {agent_id} holding on {ch.name}"
                )
                prio = 2
            if prio == 3:
                self.step(ch, c, "s", 3, "Goto", "s,wait")
            return await self.wait_exten(ch)
        if exten == "t":
            self.step(ch, c, "t", 1, "Goto", "s,wait")
            return (c, "s", 2)
        if exten == "i":
            invalid = self.var(ch, "INVALID_EXTEN")
            self.step(
                ch, c, "i", 1, "NoOp", f"dialer-agent-loop: {agent_id} invalid code {invalid}"
            )
            self.step(ch, c, "i", 2, "Goto", "s,wait")
            return (c, "s", 2)
        route = self.codes.get(exten)
        if route is None:
            return (c, "i", 1)
        url = self.agi_data(f"agent/{route}?agent={agent_id}")
        self.step(ch, c, exten, 1, "AGI", url)
        await self.agi(ch, url)
        if ch.dead:
            return None
        if route == "logout":
            self.step(ch, c, exten, 2, "Hangup", "16")
            ch.hangup_cause = 16
            return None
        self.step(ch, c, exten, 2, "Goto", "s,wait")
        return (c, "s", 2)

    async def wait_exten(self, ch: Channel) -> Next:
        """``WaitExten(600)``: a code, a bridge pulling the channel, a Redirect or the timeout."""
        c = "dialer-agent-loop"
        self.step(ch, c, "s", 2, "WaitExten", "600")
        ch.in_waitexten = True
        try:
            signal = await asyncio.wait_for(ch.mailbox.get(), self.pbx.clock.real(600.0))
        except TimeoutError:
            return (c, "t", 1)
        finally:
            ch.in_waitexten = False
        kind = signal[0]
        if kind == "exten":
            code = signal[1]
            if code in self.codes:
                return (c, code, 1)
            self.pbx.setvar(ch, "INVALID_EXTEN", code)
            return (c, "i", 1)
        if kind == "bridge":
            return await self.in_bridge(ch, signal[1], (c, "s", 3))
        if kind == "goto":
            loc: Loc = signal[1]
            return loc
        return None  # hangup

    async def in_bridge(self, ch: Channel, bridge: Bridge, resume: Loc) -> Next:
        """A channel pulled into a bridge waits for it to end, then goes to F() or resumes."""
        if bridge.done is not None:
            await asyncio.shield(bridge.done)
        if ch.dead or ch.destroyed:
            return None
        after = bridge.after.get(ch.name)
        return after if after is not None else resume

    async def ctx_agent_wrapup(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-agent-wrapup``: UserEvent AgentWrapup, FastAGI agent/wrapup, back to loop."""
        c = "dialer-agent-wrapup"
        agent_id = self.var(ch, "AGENTID")
        if prio <= 1:
            self.step(
                ch,
                c,
                "s",
                1,
                "NoOp",
                f"dialer-agent-wrapup: {agent_id} on {ch.name}, customer gone",
            )
            prio = 2
        if prio == 2:
            data = f"AgentWrapup,Agent: {agent_id},Channel: {ch.name}"
            self.step(ch, c, "s", 2, "UserEvent", data)
            self.user_event(ch, data)
            prio = 3
        if prio == 3:
            url = self.agi_data(f"agent/wrapup?agent={agent_id}")
            self.step(ch, c, "s", 3, "AGI", url)
            await self.agi(ch, url)
            if ch.dead:
                return None
        self.step(ch, c, "s", 4, "Goto", "dialer-agent-loop,s,1")
        return ("dialer-agent-loop", "s", 1)

    async def ctx_agent_notice(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-agent-notice``: a holding agent hears ``DIALER_NOTICE``, then holds again.

        The controller's AMI Redirect brings the agent here; a customer bridged meanwhile pulls
        them out of Playback (as out of WaitExten), and the bridge's F() decides what follows.
        """
        c = "dialer-agent-notice"
        agent_id = self.var(ch, "AGENTID")
        notice = self.var(ch, "DIALER_NOTICE")
        self.step(ch, c, "s", 1, "NoOp", f"dialer-agent-notice: {agent_id} hears {notice}")
        self.step(ch, c, "s", 2, "GotoIf", f"{int(not notice)}?back")
        if notice:
            self.step(ch, c, "s", 3, "Playback", notice)
            self.pbx.stats_counter["agent_notices"] += 1
            ends = self.pbx.clock.now() + self.prompt_seconds(notice)
            while (left := ends - self.pbx.clock.now()) > 0:
                try:
                    signal = await asyncio.wait_for(ch.mailbox.get(), self.pbx.clock.real(left))
                except TimeoutError:
                    break
                if signal[0] == "bridge":
                    return await self.in_bridge(ch, signal[1], (c, "s", 4))
                if signal[0] == "hangup":
                    return None
                # DTMF during Playback is not heard (it is no WaitExten): keep playing.
            if ch.dead:
                return None
            self.pbx.setvar(ch, "PLAYBACKSTATUS", "SUCCESS")
        self.step(ch, c, "s", 4, "Goto", "dialer-agent-loop,s,1")
        return ("dialer-agent-loop", "s", 1)

    async def ctx_dialer_inbound(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-inbound``: a DID answered into FastAGI ivr/main; a notice if it is down."""
        c = "dialer-inbound"
        status = ""
        if prio <= 1:
            cid = f'"{ch.cid_name}" <{ch.cid_num}>'
            self.step(
                ch, c, exten, 1, "NoOp", f"dialer-inbound: DID {exten} from {cid} on {ch.name}"
            )
            prio = 2
        if prio == 2:
            self.step(ch, c, exten, 2, "Answer", "")
            self.answer(ch)
            prio = 3
        if prio == 3:
            url = self.agi_data(f"ivr/main?did={exten}")
            self.step(ch, c, exten, 3, "AGI", url)
            status = await self.agi(ch, url)
            if ch.dead:
                return None
            prio = 4
        if prio == 4:
            down = (status or self.var(ch, "AGISTATUS")) == "FAILURE"
            self.step(ch, c, exten, 4, "GotoIf", f"{int(down)}?down")
            prio = 6 if down else 5
        if prio == 5:
            self.step(ch, c, exten, 5, "Hangup", "")
            ch.hangup_cause = 16
            return None
        if prio == 6:
            data = f"DialerInboundDown,DID: {exten},Caller: {ch.cid_num}"
            self.step(ch, c, exten, 6, "UserEvent", data)
            self.user_event(ch, data)
            prio = 7
        if prio == 7:
            self.step(ch, c, exten, 7, "Playback", "ss-noservice")
            if not await self.playback(ch, "ss-noservice"):
                return None
        self.step(ch, c, exten, 8, "Hangup", "16")
        ch.hangup_cause = 16
        return None

    async def ctx_dialer_supervisor(self, ch: Channel, exten: str, prio: int) -> Next:
        """``dialer-supervisor``: supervisor phones cannot dial anything."""
        c = "dialer-supervisor"
        self.step(ch, c, exten, 1, "Playback", "ss-noservice")
        if not await self.playback(ch, "ss-noservice"):
            return None
        self.step(ch, c, exten, 2, "Hangup", "16")
        ch.hangup_cause = 16
        return None

    # ------------------------------------------------------------------ Application originate

    async def run_application(self, ch: Channel, app: str, data: str) -> None:
        """An Originate with ``Application:``: run it on the answered channel, then hang up."""
        ch.app, ch.appdata = app, data
        name = app.lower()
        cause = 0
        if name == "wait":
            try:
                seconds = float(data or 0)
            except ValueError:
                seconds = 0.0
            await self.wait(ch, seconds)
        elif name == "playback":
            await self.playback(ch, data)
        elif name == "chanspy":
            await self.chanspy(ch, data)
        elif name == "agi":
            await self.agi(ch, data)
        else:
            await self.wait(ch, 3600.0)
        if not ch.destroyed:
            self.pbx.destroy(ch, ch.hangup_cause if ch.dead else cause)

    async def chanspy(self, ch: Channel, data: str) -> None:
        """ChanSpy(target,opts): ChanSpyStart/Stop with Spyer/Spyee blocks [24]; no bridge."""
        target = self.pbx.find_prefix(data.split(",", 1)[0]) if data else None
        if target is None:
            await self.wait(ch, 1.0)
            return
        self.pbx.bus.emit("ChanSpyStart", [*ch.snapshot("Spyer"), *target.snapshot("Spyee")])
        while not ch.dead and not target.destroyed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ch.hup.wait(), self.pbx.clock.real(1.0))
        self.pbx.bus.emit("ChanSpyStop", [*ch.snapshot("Spyer"), *target.snapshot("Spyee")])

    # ------------------------------------------------------------------ FastAGI

    async def agi(self, ch: Channel, data: str) -> str:
        """``AGI(agi://...)``: connect, serve the session, set AGISTATUS [11, 32]."""
        url = agi_peer.parse_agi_url(data)
        try:
            reader, writer = await asyncio.open_connection(url.host, url.port)
        except OSError:
            # Connection refused: AGI() fails at once and the dialplan continues [32].
            self.pbx.stats_counter["agi_failures"] += 1
            self.pbx.setvar(ch, "AGISTATUS", "FAILURE")
            return "FAILURE"
        self.pbx.stats_counter["agi_sessions"] += 1
        session = AgiSession(self, ch, reader, writer)
        try:
            status = await session.run(url)
        finally:
            writer.close()
        if ch.destroyed:
            return status
        self.pbx.setvar(ch, "AGISTATUS", status)
        if ch.dead:
            ch.far_gone = False
            self.pbx.emit_ch("SoftHangupRequest", ch, [("Cause", "16")])
        return status

    def next_command_id(self) -> str:
        """An AGIExecStart/End CommandId."""
        self._command_id += 7919
        return str(self._command_id)


class AgiSession:
    """One FastAGI connection from the channel's point of view (Asterisk's side)."""

    def __init__(
        self, dp: Dialplan, ch: Channel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.dp = dp
        self.pbx = dp.pbx
        self.ch = ch
        self.reader = reader
        self.writer = writer
        self.busy = False
        self.hangup_sent = False

    def env(self, url: agi_peer.AgiUrl) -> dict[str, str]:
        """The ``agi_*`` environment of this channel [11, 21, 28, 34]."""
        ch = self.ch
        return {
            "network": "yes",
            "network_script": url.script,
            "request": url.request,
            "channel": ch.name,
            "language": "en",
            "type": ch.type,
            "uniqueid": ch.uniqueid,
            "version": agi_peer.AGI_VERSION,
            "callerid": ch.cid_num if ch.cid_num != "<unknown>" else "unknown",
            "calleridname": ch.cid_name if ch.cid_name != "<unknown>" else "unknown",
            "callingpres": "0",
            "callingani2": "0",
            "callington": "0",
            "callingtns": "0",
            "dnid": ch.dnid or "unknown",
            "rdnis": "unknown",
            "context": ch.context,
            "extension": ch.exten,
            "priority": str(ch.priority),
            "enhanced": "0.0",
            "accountcode": "",
            "threadid": str(140000000000000 + (hash(ch.uniqueid) % 1000000000)),
        }

    async def run(self, url: agi_peer.AgiUrl) -> str:
        """Send the environment, answer commands until the server closes; return AGISTATUS."""
        self.writer.write(agi_peer.encode_env(self.env(url), url.args))
        watcher = asyncio.get_running_loop().create_task(self._watch_hangup())
        try:
            while True:
                try:
                    line = await self.reader.readline()
                except (ValueError, asyncio.LimitOverrunError, ConnectionError):
                    break
                if not line or not line.endswith(b"\n"):
                    break  # the server closed the socket: the AGI ends here [18]
                text = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
                if not text.strip():
                    continue
                self.busy = True
                reply = await self.execute(text)
                self.busy = False
                if self.writer.is_closing() or self.reader.at_eof():
                    break
                self.writer.write(reply)
                if self.ch.dead and not self.hangup_sent:
                    # After the far end left, the next reply is preceded by HANGUP [18, 31].
                    self.hangup_sent = True
                    self.writer.write(agi_peer.HANGUP_LINE)
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
        finally:
            watcher.cancel()
        return "HANGUP" if self.ch.dead else "SUCCESS"

    async def _watch_hangup(self) -> None:
        await self.ch.hup.wait()
        await asyncio.sleep(0)
        if (
            not self.busy
            and not self.hangup_sent
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        ):
            self.hangup_sent = True
            self.writer.write(agi_peer.HANGUP_LINE)

    async def execute(self, text: str) -> bytes:
        """One command line -> the reply bytes; AGIExecStart/End around it."""
        ch = self.ch
        args = agi_peer.split_args(text)
        found = agi_peer.match_command(args)
        cid = self.dp.next_command_id()
        self.pbx.emit_ch("AGIExecStart", ch, [("CommandId", cid), ("Command", text)])
        if found is None:
            reply = agi_peer.INVALID
        else:
            name, rest = found
            if ch.dead and name not in agi_peer.DEAD_OK:
                reply = agi_peer.DEAD
            else:
                reply = await self.dispatch(name, rest)
        code = reply[:3].decode()
        result = {
            "200": "Success",
            "510": "Invalid or unknown command",
            "511": "Command Not Permitted on a dead channel or intercept routine",
            "520": "Usage",
        }.get(code, "Failure")
        if not ch.destroyed:
            self.pbx.emit_ch(
                "AGIExecEnd",
                ch,
                [("CommandId", cid), ("Command", text), ("ResultCode", code), ("Result", result)],
            )
        return reply

    async def dispatch(self, name: str, args: list[str]) -> bytes:
        """Execute a known command (Asterisk's reply texts, from the traces where recorded)."""
        ch, pbx, dp = self.ch, self.pbx, self.dp
        r = agi_peer.result
        if name == "ANSWER":
            dp.answer(ch)
            return r(0)
        if name == "HANGUP":
            target = pbx.find(args[0]) if args else ch
            if target is None:
                return r(-1)
            pbx.soft_hangup(target, 32 if target is ch else 16)
            if target is ch:
                # hangupcause stays what it was: unset (0) unless a bridge left 16 [21, 26, 30]
                ch.hangup_cause = 16 if ch.was_bridged else 0
            return r(1)
        if name == "NOOP":
            return r(0)
        if name == "VERBOSE":
            return r(1)
        if name == "GET VARIABLE":
            if not args:
                return agi_peer.usage_520(name)
            value = pbx.getvar(ch, args[0])
            return r(0) if value is None else r(1, f"({value})")
        if name == "GET FULL VARIABLE":
            if not args:
                return agi_peer.usage_520(name)
            target = pbx.find(args[1]) if len(args) > 1 else ch
            return r(1, f"({pbx.expand(target or ch, args[0])})")
        if name == "SET VARIABLE":
            if len(args) < 2:
                return agi_peer.usage_520(name)
            pbx.setvar(ch, args[0], args[1])
            return r(1)
        if name == "CHANNEL STATUS":
            return r(ch.state if ch.state else 0)
        if name == "EXEC":
            if not args:
                return agi_peer.usage_520(name)
            return r(await self.exec_app(args[0], args[1] if len(args) > 1 else ""))
        if name in ("STREAM FILE", "CONTROL STREAM FILE", "GET OPTION"):
            if len(args) < 2:
                return agi_peer.usage_520(name)
            seconds = dp.prompt_seconds(args[0])
            ok = await dp.wait(ch, seconds)
            return r(0 if ok else -1, f"endpos={int(seconds * 8000)}")
        if name == "GET DATA":
            if not args:
                return agi_peer.usage_520(name)
            return await self.get_data(args)
        if name == "WAIT FOR DIGIT":
            digits, delay = self._typed(args[0] if args else "")
            timeout = _ms(args[0] if args else "-1", math.inf)
            if not digits or delay > timeout:
                ok = await dp.wait(ch, min(timeout, 3600.0))
                return r(0 if ok else -1)
            if not await dp.wait(ch, delay):
                return r(-1)
            await self._type(digits[0])
            return r(ord(digits[0]))
        if name in ("SAY DIGITS", "SAY NUMBER", "SAY ALPHA"):
            ok = await dp.wait(ch, 0.4 * len(args[0]) if args else 0.0)
            return r(0 if ok else -1)
        if name == "SET CALLERID":
            if args:
                from dialer.simpbx.pbx import parse_callerid

                ch.cid_name, ch.cid_num = parse_callerid(args[0])
            return r(1)
        if name in ("SET CONTEXT", "SET EXTENSION", "SET PRIORITY", "SET AUTOHANGUP", "SET MUSIC"):
            return r(0)
        if name == "DATABASE GET":
            return r(0)
        if name.startswith("DATABASE"):
            return r(1)
        if name == "RECORD FILE":
            ok = await dp.wait(ch, 5.0)
            return r(0 if ok else -1, "endpos=0")
        return r(0)

    def _typed(self, prompt: str) -> tuple[str, float]:
        owner = self.ch.owner
        if owner is None or not hasattr(owner, "dtmf_for"):
            return "", math.inf
        digits, delay = owner.dtmf_for(self.ch, prompt)
        return str(digits), float(delay)

    async def _type(self, digits: str) -> bool:
        """The far end types ``digits``: DTMFBegin/End each [26, 34]."""
        return await self.pbx.press(self.ch, digits)

    async def get_data(self, args: list[str]) -> bytes:
        """``GET DATA file [timeout_ms [max]]``: digits until ``#``/max/timeout [22, 28, 34]."""
        dp, ch = self.dp, self.ch
        prompt = args[0]
        timeout = (
            _ms(args[1], GET_DATA_DEFAULT_TIMEOUT) if len(args) > 1 else GET_DATA_DEFAULT_TIMEOUT
        )
        try:
            maxdigits = int(args[2]) if len(args) > 2 else 1024
        except ValueError:
            maxdigits = 1024
        digits, delay = self._typed(prompt)
        limit = dp.prompt_seconds(prompt) + timeout
        if not digits or delay > limit:
            if not await dp.wait(ch, limit):
                return agi_peer.result(-1)
            return agi_peer.result("", "(timeout)")
        if not await dp.wait(ch, delay):
            return agi_peer.result(-1)
        got = ""
        gap = self.pbx.profile.agents.typing_digit
        for i, digit in enumerate(digits):
            if i:
                await self.pbx.clock.sleep(max(gap - 0.14, 0.0))
            if not await self.pbx.press(ch, digit):
                return agi_peer.result(-1)
            if digit == "#":
                break
            got += digit
            if len(got) >= maxdigits:
                break
        return agi_peer.result(got)

    async def exec_app(self, app: str, data: str) -> int:
        """``EXEC app data``: the dialplan applications a FastAGI script uses [18, 22, 31]."""
        ch, pbx, dp = self.ch, self.pbx, self.dp
        name = app.lower()
        if name == "bridge":
            return await self.exec_bridge(data)
        if ch.dead and name not in ("noop", "set", "verbose", "log", "userevent"):
            return -1
        if name == "playback":
            return 0 if await dp.playback(ch, data.split(",")[0]) else -1
        if name == "hangup":
            try:
                cause = int(data) if data else 16
            except ValueError:
                cause = 16
            pbx.soft_hangup(ch, cause, event=None)
            return -1
        if name == "wait":
            try:
                seconds = float(data or 0)
            except ValueError:
                seconds = 0.0
            return 0 if await dp.wait(ch, seconds) else -1
        if name == "waitforsilence":
            ms = _ms(data.split(",")[0] or "1000", 1.0)
            ok = await dp.wait(ch, ms + 0.3)
            if ok:
                pbx.setvar(ch, "WAITSTATUS", "SILENCE")
            return 0 if ok else -1
        if name == "answer":
            dp.answer(ch)
            return 0
        if name == "set":
            key, _, value = data.partition("=")
            if key:
                pbx.setvar(ch, key.strip(), value)
            return 0
        if name == "userevent":
            dp.user_event(ch, data)
            return 0
        if name in ("noop", "verbose", "log", "progress", "ringing"):
            return 0
        if name == "mixmonitor":
            ch.monitoring = True
            pbx.emit_ch("MixMonitorStart", ch)
            return 0
        if name == "stopmixmonitor":
            if ch.monitoring:
                ch.monitoring = False
                pbx.emit_ch("MixMonitorStop", ch)
            return 0
        if name == "amd":
            return 0 if await dp.amd(ch) else -1
        if name in ("startmusiconhold", "musiconhold"):
            pbx.emit_ch("MusicOnHoldStart", ch, [("Class", data.split(",")[0] or "default")])
            ch.music_on_hold = True
            if name == "musiconhold":
                return 0 if await dp.wait(ch, _seconds(data, 1, 3600.0)) else -1
            return 0
        if name == "stopmusiconhold":
            if ch.music_on_hold:
                ch.music_on_hold = False
                pbx.emit_ch("MusicOnHoldStop", ch)
            return 0
        if name in ("saynumber", "saydigits", "sayalpha"):
            return 0 if await dp.wait(ch, 0.5 * len(data.split(",")[0])) else -1
        if name == "record":
            return await self.record(data)
        if name == "read":
            return await self.read(data)
        return -2  # no such application [22]

    async def record(self, data: str) -> int:
        """Record(file,silence,max,opts): the caller speaks, then silence or the time limit."""
        ch, pbx, dp = self.ch, self.pbx, self.dp
        silence = _seconds(data, 1, 0.0)
        limit = _seconds(data, 2, 0.0) or 3600.0
        plan = ch.plan
        speech = min(plan.talk / 4 if plan is not None else 8.0, limit)
        if not await dp.wait(ch, speech + (silence if speech < limit else 0.0)):
            if not ch.destroyed:
                pbx.setvar(ch, "RECORD_STATUS", "HANGUP")
            return -1
        pbx.setvar(ch, "RECORD_STATUS", "SILENCE" if speech < limit else "TIMEOUT")
        return 0

    async def read(self, data: str) -> int:
        """Read(var,prompt,maxdigits,opts,attempts,timeout): DTMF into a variable."""
        ch, pbx, dp = self.ch, self.pbx, self.dp
        parts = data.split(",")
        var = parts[0]
        prompt = parts[1] if len(parts) > 1 else ""
        try:
            maxdigits = int(parts[2]) if len(parts) > 2 and parts[2] else 255
        except ValueError:
            maxdigits = 255
        timeout = _seconds(data, 5, GET_DATA_DEFAULT_TIMEOUT) or GET_DATA_DEFAULT_TIMEOUT
        digits, delay = self._typed(prompt)
        if not digits or delay > dp.prompt_seconds(prompt) + timeout:
            ok = await dp.wait(ch, dp.prompt_seconds(prompt) + timeout)
            pbx.setvar(ch, var, "")
            pbx.setvar(ch, "READSTATUS", "TIMEOUT" if ok else "HANGUP")
            return 0 if ok else -1
        if not await dp.wait(ch, delay):
            return -1
        got = ""
        for digit in digits:
            if not await pbx.press(ch, digit):
                return -1
            if digit == "#":
                break
            got += digit
            if len(got) >= maxdigits:
                break
        pbx.setvar(ch, var, got)
        pbx.setvar(ch, "READSTATUS", "OK")
        return 0

    async def exec_bridge(self, data: str) -> int:
        """``EXEC Bridge chan,opts``: BRIDGERESULT tells what happened; result=0 either way [31]."""
        ch, pbx = self.ch, self.pbx
        target, _, opts = data.partition(",")
        if ch.dead:
            pbx.setvar(ch, "BRIDGERESULT", "FAILURE")
            return -1
        peer = pbx.find_prefix(target.strip())
        if peer is None or peer.dead:
            pbx.setvar(ch, "BRIDGERESULT", "NONEXISTENT")
            pbx.stats_counter["bridge_nonexistent"] += 1
            return 0
        if peer is ch:
            pbx.setvar(ch, "BRIDGERESULT", "LOOP")
            return 0
        if peer.bridge is not None:
            pbx.setvar(ch, "BRIDGERESULT", "FAILURE")
            return 0
        after, allow = parse_bridge_options(opts)
        bridge = pbx.make_bridge(ch, peer, after, allow)
        assert bridge.done is not None
        await asyncio.shield(bridge.done)
        return 0


def parse_bridge_options(opts: str) -> tuple[Loc | None, bool]:
    """Bridge() options: ``F(context^exten^priority)`` for the peer, ``h`` lets it disconnect."""
    after: Loc | None = None
    allow = False
    i = 0
    while i < len(opts):
        ch = opts[i]
        if ch == "F" and i + 1 < len(opts) and opts[i + 1] == "(":
            end = opts.find(")", i)
            if end < 0:
                end = len(opts)
            parts = opts[i + 2 : end].split("^")
            if len(parts) == 3:
                try:
                    after = (parts[0], parts[1], int(parts[2]))
                except ValueError:
                    after = None
            elif len(parts) == 2:
                after = (parts[0], parts[1], 1)
            i = end + 1
            continue
        if ch == "h":
            allow = True
        i += 1
    return after, allow


def _seconds(data: str, index: int, default: float) -> float:
    """The ``index``-th comma-separated argument as seconds (``default`` if absent or junk)."""
    parts = data.split(",")
    if index >= len(parts) or not parts[index].strip():
        return default
    try:
        return max(float(parts[index]), 0.0)
    except ValueError:
        return default


def _ms(text: str, default: float) -> float:
    """Milliseconds text -> seconds; negative or junk -> ``default``."""
    try:
        value = int(text)
    except ValueError:
        return default
    return default if value < 0 else value / 1000.0


__all__ = ["AgiSession", "Dialplan", "parse_bridge_options"]
