"""The simulator's AMI server: one session per TCP client, speaking like Asterisk 22.

Replies, error texts and list shapes are the recorded ones (README traces 01-10, 17, 19, 20,
23): the banner without a blank line, ``Authentication failed`` ~1 s late then close, ``Permission
denied`` before login, the exact "Invalid/unknown command" text for anything unimplemented.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from dialer.protocol.ami import (
    AmiDecoder,
    AmiProtocolError,
    Message,
    encode_banner,
    encode_headers,
    md5_key,
)
from dialer.simpbx.channels import STATE_DESC, Channel, EventSink, Header
from dialer.simpbx.pbx import OriginateRequest, parse_callerid

if TYPE_CHECKING:
    from dialer.simpbx.pbx import SimPbx

ALL_CLASSES = frozenset(
    {
        "system",
        "call",
        "log",
        "verbose",
        "command",
        "agent",
        "user",
        "config",
        "dtmf",
        "reporting",
        "cdr",
        "dialplan",
        "originate",
        "agi",
        "cc",
        "aoc",
        "test",
        "security",
        "message",
    }
)
MAX_BUFFERED = 64 << 20  # a client this far behind is cut off (Asterisk has a write timeout)

Handler = Callable[[Message], Awaitable[None]]


class AmiSession(EventSink):
    """One AMI client connection."""

    def __init__(
        self, pbx: SimPbx, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.pbx = pbx
        self.reader = reader
        self.writer = writer
        self.authed = False
        self.events_on = True
        self.mask: frozenset[str] | None = None
        self.challenge: str | None = None
        self.closing = False
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.handlers: dict[str, Handler] = {
            "login": self.a_login,
            "challenge": self.a_challenge,
            "logoff": self.a_logoff,
            "ping": self.a_ping,
            "events": self.a_events,
            "originate": self.a_originate,
            "hangup": self.a_hangup,
            "redirect": self.a_redirect,
            "bridge": self.a_bridge,
            "getvar": self.a_getvar,
            "setvar": self.a_setvar,
            "status": self.a_status,
            "coreshowchannels": self.a_coreshowchannels,
            "command": self.a_command,
            "mixmonitor": self.a_mixmonitor,
            "stopmixmonitor": self.a_stopmixmonitor,
            "reload": self.a_reload,
            "queuepause": self.a_queuepause,
            "queueadd": self.a_queueadd,
            "queueremove": self.a_queueremove,
            "queuestatus": self.a_queuelist,
            "queuesummary": self.a_queuelist,
        }

    # ------------------------------------------------------------------ plumbing

    def wants(self, cls: str) -> bool:
        """Events reach a logged-in session with events on and the class in its mask [04]."""
        return (
            self.authed
            and self.events_on
            and not self.closing
            and (self.mask is None or cls in self.mask)
        )

    def send(self, data: bytes) -> None:
        """Queue bytes; they go out in one write per event-loop turn, in order.

        Coalescing matters under load: one ``send()`` system call per event cost more than
        building the events (``dialer bench sim``).
        """
        if self.closing:
            return
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what was queued unless the link is going away or hopelessly behind."""
        self._flush_scheduled = False
        if self.closing or self.reader.at_eof() or self.writer.transport.is_closing():
            self.closing = True
            self._out.clear()
            return
        if not self._out:
            self._out.clear()
            return
        data = b"".join(self._out)
        self._out.clear()
        if self.writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            self.abort()
            return
        self.writer.write(data)

    def abort(self) -> None:
        """Drop the connection now."""
        self.closing = True
        if self not in self.pbx.bus.sinks:
            pass
        with contextlib.suppress(ValueError):
            self.pbx.bus.sinks.remove(self)
        self.writer.close()

    async def run(self) -> None:
        """Greet, then read actions and answer them in order until Logoff or EOF."""
        self.pbx.bus.sinks.append(self)
        decoder = AmiDecoder(expect_banner=False)
        self.writer.write(encode_banner())
        try:
            while not self.closing:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    frames = decoder.feed(data)
                except AmiProtocolError:
                    break
                for frame in frames:
                    if isinstance(frame, Message):
                        await self.handle(frame)
                    if self.closing:
                        break
                self.flush()
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closing = True
            with contextlib.suppress(ValueError):
                self.pbx.bus.sinks.remove(self)
            self.writer.close()

    def reply(self, msg: Message, response: str, headers: list[Header]) -> None:
        """``Response:``, the ActionID if any, then ``headers`` [10: errors keep the ActionID]."""
        out: list[Header] = [("Response", response)]
        if msg.action_id is not None:
            out.append(("ActionID", msg.action_id))
        out.extend(headers)
        self.send(encode_headers(out))

    def error(self, msg: Message, text: str) -> None:
        """``Response: Error`` with ``Message: text``."""
        self.reply(msg, "Error", [("Message", text)])

    def ok(self, msg: Message, text: str | None = None) -> None:
        """``Response: Success`` with an optional ``Message``."""
        self.reply(msg, "Success", [("Message", text)] if text is not None else [])

    def list_item(self, msg: Message, name: str, headers: list[Header], *, id_first: bool) -> None:
        """An EventList member: no Privilege, no Timestamp [07, 08]."""
        out: list[Header] = [("Event", name)]
        if id_first and msg.action_id is not None:
            out.append(("ActionID", msg.action_id))
        out.extend(headers)
        if not id_first and msg.action_id is not None:
            out.append(("ActionID", msg.action_id))
        self.send(encode_headers(out))

    async def handle(self, msg: Message) -> None:
        """Dispatch one action."""
        if msg.kind != "action":
            self.error(msg, "Missing action in request")
            return
        action = msg.name.strip()
        low = action.lower()
        if not self.authed and low not in ("login", "challenge", "logoff"):
            self.error(msg, "Permission denied")
            return
        handler = self.handlers.get(low)
        if handler is None:
            self.error(
                msg,
                f"Invalid/unknown command: {action}. "
                "Use Action: ListCommands to show available commands.",
            )
            return
        await handler(msg)

    # ------------------------------------------------------------------ session actions

    async def a_login(self, msg: Message) -> None:
        """Login: plain secret or MD5 key over the last Challenge [01, 02, 03]."""
        user = msg.get("Username") or ""
        if (msg.get("AuthType") or "").lower() == "md5":
            good = (
                self.challenge is not None
                and user == self.pbx.username
                and (msg.get("Key") or "").lower() == md5_key(self.challenge, self.pbx.secret)
            )
        else:
            good = user == self.pbx.username and msg.get("Secret") == self.pbx.secret
        if not good:
            # Asterisk answers a failed login after about a second, then closes [02].
            await self.pbx.clock.sleep(self.pbx.profile.asterisk.failed_login_delay)
            self.error(msg, "Authentication failed")
            self.flush()
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
            self.closing = True
            return
        self._set_events(msg.get("Events"))
        self.authed = True
        self.ok(msg, "Authentication accepted")
        if self.wants("system"):
            uptime = int(self.pbx.clock.now())
            self.send(
                encode_headers(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", str(uptime)),
                        ("LastReload", str(uptime)),
                        ("Status", "Fully Booted"),
                    ]
                )
            )
        peer = self.writer.get_extra_info("peername") or ("127.0.0.1", 0)
        local = self.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        tv = self._tv()
        self.pbx.bus.emit(
            "SuccessfulAuth",
            [
                ("EventTV", tv),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", user),
                ("SessionID", f"0x{id(self):x}"),
                ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"),
                ("UsingPassword", "0"),
                ("SessionTV", tv),
            ],
        )

    def _tv(self) -> str:
        import time

        epoch = self.pbx.clock.epoch()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + (
            f".{int((epoch % 1) * 1000):03d}+0000"
        )

    def _set_events(self, value: str | None) -> None:
        if value is None:
            return
        v = value.strip().lower()
        if v in ("on", "yes", "true", "all", "1"):
            self.events_on, self.mask = True, None
        elif v in ("off", "no", "false", "0", ""):
            self.events_on = False
        else:
            classes = frozenset(p.strip() for p in v.split(",") if p.strip())
            self.events_on = True
            self.mask = None if "all" in classes else classes & ALL_CLASSES

    async def a_challenge(self, msg: Message) -> None:
        """Challenge / AuthType: md5 -> a decimal challenge string [03]."""
        if (msg.get("AuthType") or "").lower() != "md5":
            self.error(msg, "Must specify AuthType")
            return
        if self.challenge is None:
            self.challenge = str(random.SystemRandom().randrange(100000000, 999999999))
        self.reply(msg, "Success", [("Challenge", self.challenge)])

    async def a_logoff(self, msg: Message) -> None:
        """Logoff: Goodbye, then Asterisk closes the socket [01]."""
        self.reply(msg, "Goodbye", [("Message", "Thanks for all the fish.")])
        self.flush()
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        self.closing = True

    async def a_ping(self, msg: Message) -> None:
        """Ping: Pong with a Timestamp [05]."""
        self.reply(
            msg, "Success", [("Ping", "Pong"), ("Timestamp", f"{self.pbx.clock.epoch():.6f}")]
        )

    async def a_events(self, msg: Message) -> None:
        """Events / EventMask: on, off or a class list; the reply says On/Off [04]."""
        self._set_events(msg.get("EventMask") or "off")
        self.reply(msg, "Success", [("Events", "On" if self.events_on else "Off")])

    async def a_reload(self, msg: Message) -> None:
        """Reload: nothing to reload in the simulator; acknowledged like Asterisk."""
        self.ok(msg, "Module Reloaded")

    # ------------------------------------------------------------------ app_queue (no queues)

    async def a_queuepause(self, msg: Message) -> None:
        """QueuePause: our dialplan has no queue members, so any interface is unknown [10]."""
        if not msg.get("Interface"):
            self.error(msg, "Need 'Interface' and 'Paused' fields")
            return
        self.error(msg, "Interface not found")

    async def a_queueadd(self, msg: Message) -> None:
        """QueueAdd: the contract configures no queues (queues.conf is empty)."""
        if not msg.get("Queue") or not msg.get("Interface"):
            self.error(msg, "'Queue' and 'Interface' not specified.")
            return
        self.error(msg, "Unable to add interface to queue: No such queue")

    async def a_queueremove(self, msg: Message) -> None:
        """QueueRemove: no queues, so nothing to remove."""
        if not msg.get("Queue") or not msg.get("Interface"):
            self.error(msg, "Need 'Queue' and 'Interface' parameters.")
            return
        self.error(msg, "Unable to remove interface from queue: No such queue")

    async def a_queuelist(self, msg: Message) -> None:
        """QueueStatus / QueueSummary: empty lists (no queues) [25 shapes]."""
        status = msg.name.lower() == "queuestatus"
        what = "status" if status else "summary"
        self.reply(
            msg, "Success", [("EventList", "start"), ("Message", f"Queue {what} will follow")]
        )
        self.list_item(
            msg,
            "QueueStatusComplete" if status else "QueueSummaryComplete",
            [("EventList", "Complete"), ("ListItems", "0")],
            id_first=True,
        )

    # ------------------------------------------------------------------ calls

    async def a_originate(self, msg: Message) -> None:
        """Originate, with the same header checks and replies as Asterisk [10, 11, 17]."""
        channel = (msg.get("Channel") or "").strip()
        if not channel:
            self.error(msg, "Channel not specified")
            return
        app = (msg.get("Application") or "").strip() or None
        context = (msg.get("Context") or "").strip() or None
        exten = (msg.get("Exten") or "").strip() or None
        prio_text = (msg.get("Priority") or "").strip()
        priority = 1
        if prio_text:
            try:
                priority = int(prio_text)
            except ValueError:
                self.error(msg, "Invalid priority")
                return
        timeout_text = (msg.get("Timeout") or "").strip()
        timeout_ms = 30000
        if timeout_text:
            try:
                timeout_ms = int(timeout_text)
            except ValueError:
                self.error(msg, "Invalid timeout")
                return
        if app is None and (context is None or not prio_text):
            self.error(msg, "Originate with 'Exten' requires 'Context' and 'Priority'")
            return
        name, num = parse_callerid(msg.get("CallerID") or "")
        variables: list[tuple[str, str]] = []
        for item in msg.get_all("Variable"):
            for part in item.split(","):
                key, sep, value = part.partition("=")
                if sep and key.strip():
                    variables.append((key.strip(), value))
        is_async = (msg.get("Async") or "").strip().lower() in ("true", "yes", "1", "on")
        req = OriginateRequest(
            channel=channel,
            context=context,
            exten=exten or ("s" if app is None else None),
            priority=priority,
            application=app,
            data=msg.get("Data") or "",
            timeout=max(timeout_ms, 0) / 1000.0,
            caller_name=name,
            caller_num=num,
            is_async=is_async,
            channel_id=(msg.get("ChannelId") or "").strip() or None,
            other_channel_id=(msg.get("OtherChannelId") or "").strip() or None,
            variables=tuple(variables),
            action_id=msg.action_id,
        )
        if req.channel_id and self.pbx.find(req.channel_id):
            self.error(msg, "Uniqueid already in use.")
            return
        if is_async:
            self.ok(msg, "Originate successfully queued")
            self.pbx.spawn(self.pbx.originate(req))
            return
        result = await self.pbx.originate(req)
        if result.success:
            self.ok(msg, "Originate successfully queued")
        else:
            self.error(msg, "Originate failed")

    async def a_hangup(self, msg: Message) -> None:
        """Hangup: by name (or /regex/), optional Cause [10, 18, 25]."""
        name = (msg.get("Channel") or "").strip()
        if not name:
            self.error(msg, "No channel specified")
            return
        try:
            cause = int(msg.get("Cause") or 16)
        except ValueError:
            cause = 16
        if len(name) > 1 and name.startswith("/") and name.endswith("/"):
            try:
                rx = re.compile(name[1:-1])
            except re.error:
                self.error(msg, "Invalid regex")
                return
            hits = [c for c in list(self.pbx.channels.values()) if rx.search(c.name)]
            self.reply(
                msg,
                "Success",
                [("EventList", "start"), ("Message", "Channels hung up will follow")],
            )
            for hit in hits:
                self.list_item(msg, "ChannelHungup", [("Channel", hit.name)], id_first=True)
                self.pbx.soft_hangup(hit, cause)
            self.list_item(
                msg,
                "ChannelsHungupListComplete",
                [("EventList", "Complete"), ("ListItems", str(len(hits)))],
                id_first=True,
            )
            return
        ch = self.pbx.find(name)
        if ch is None:
            self.error(msg, "No such channel")
            return
        self.ok(msg, "Channel Hungup")
        self.pbx.soft_hangup(ch, cause)

    async def a_redirect(self, msg: Message) -> None:
        """Redirect: move a channel to context/exten/priority [10, 20]."""
        name = (msg.get("Channel") or "").strip()
        if not name:
            self.error(msg, "Channel not specified")
            return
        ch = self.pbx.find(name)
        if ch is None:
            self.error(msg, f"Channel does not exist: {name}")
            return
        try:
            prio = int(msg.get("Priority") or 1)
        except ValueError:
            self.error(msg, "Invalid priority")
            return
        context = (msg.get("Context") or ch.context).strip()
        exten = (msg.get("Exten") or "s").strip()
        self.ok(msg, "Redirect successful")
        if ch.bridge is not None:
            ch.bridge.after[ch.name] = None
            self.pbx.end_bridge(ch.bridge, first=ch)
        self.pbx.dialplan.start(ch, (context, exten, prio))

    async def a_bridge(self, msg: Message) -> None:
        """Bridge action: Channel1 with Channel2 [19]."""
        one = (msg.get("Channel1") or "").strip()
        two = (msg.get("Channel2") or "").strip()
        if not one or not two:
            self.error(msg, "Missing channel parameter in request")
            return
        a = self.pbx.find_prefix(one)
        if a is None:
            self.error(msg, f"Channel1 does not exist: {one}")
            return
        b = self.pbx.find_prefix(two)
        if b is None:
            self.error(msg, f"Channel2 does not exist: {two}")
            return
        if a is b or a.bridge is not None or b.bridge is not None:
            self.error(msg, "Unable to bridge channels")
            return
        self.ok(msg, "Channels have been bridged")
        self.pbx.make_bridge(a, b, None, False)

    async def a_getvar(self, msg: Message) -> None:
        """Getvar: channel or global; unset gives an empty Value [09]."""
        var = (msg.get("Variable") or "").strip()
        if not var:
            self.error(msg, "No variable specified")
            return
        ch = self._channel_opt(msg)
        if ch is False:
            return
        value = self.pbx.getvar(ch, var) if isinstance(ch, Channel) else self.pbx.globals.get(var)
        self.reply(msg, "Success", [("Variable", var), ("Value", value or "")])

    async def a_setvar(self, msg: Message) -> None:
        """Setvar: channel or global [09]."""
        var = (msg.get("Variable") or "").strip()
        if not var:
            self.error(msg, "No variable specified")
            return
        ch = self._channel_opt(msg)
        if ch is False:
            return
        value = msg.get("Value") or ""
        if isinstance(ch, Channel):
            self.pbx.setvar(ch, var, value)
        else:
            self.pbx.globals[var] = value
        self.ok(msg, "Variable Set")

    def _channel_opt(self, msg: Message) -> Channel | bool | None:
        name = (msg.get("Channel") or "").strip()
        if not name:
            return None
        ch = self.pbx.find(name)
        if ch is None:
            self.error(msg, "No such channel")
            return False
        return ch

    async def a_status(self, msg: Message) -> None:
        """Status: an EventList of Status events (``Privilege: Call``, no Timestamp) [08]."""
        name = (msg.get("Channel") or "").strip()
        if name:
            ch = self.pbx.find(name)
            if ch is None:
                self.error(msg, "No such channel")
                return
            chans = [ch]
        else:
            chans = [c for c in self.pbx.channels.values() if not c.destroyed]
        wanted = [v.strip() for v in (msg.get("Variables") or "").split(",") if v.strip()]
        self.reply(
            msg, "Success", [("EventList", "start"), ("Message", "Channel status will follow")]
        )
        now = self.pbx.clock.now()
        for ch in chans:
            fmt = "(slin)" if ch.tech == "Local" else "(ulaw)"
            raw = fmt.strip("()")
            hdrs: list[Header] = [("Privilege", "Call"), *ch.snapshot()]
            hdrs += [
                ("Type", ch.tech),
                ("DNID", ch.dnid),
                ("EffectiveConnectedLineNum", ch.conn_num),
                ("EffectiveConnectedLineName", ch.conn_name),
                ("TimeToHangup", "0"),
                ("BridgeID", ch.bridge.uniqueid if ch.bridge else ""),
                ("Application", ch.app),
                ("Data", ch.appdata),
                ("Nativeformats", fmt),
                ("Readformat", raw),
                ("Readtrans", ""),
                ("Writeformat", raw),
                ("Writetrans", ""),
                ("Callgroup", "0"),
                ("Pickupgroup", "0"),
                ("Seconds", str(int(now - ch.created))),
            ]
            for var in wanted:
                hdrs.append(("Variable", f"{var}={self.pbx.getvar(ch, var) or ''}"))
            self.list_item(msg, "Status", hdrs, id_first=False)
        self.list_item(
            msg,
            "StatusComplete",
            [("EventList", "Complete"), ("ListItems", str(len(chans))), ("Items", str(len(chans)))],
            id_first=True,
        )

    async def a_coreshowchannels(self, msg: Message) -> None:
        """CoreShowChannels: one CoreShowChannel per channel, then the Complete event [07]."""
        chans = [c for c in self.pbx.channels.values() if not c.destroyed]
        self.reply(msg, "Success", [("EventList", "start"), ("Message", "Channels will follow")])
        now = self.pbx.clock.now()
        for ch in chans:
            secs = int(now - ch.created)
            dur = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            self.list_item(
                msg,
                "CoreShowChannel",
                [
                    *ch.snapshot(),
                    ("Application", ch.app),
                    ("ApplicationData", ch.appdata),
                    ("Duration", dur),
                    ("BridgeId", ch.bridge.uniqueid if ch.bridge else ""),
                ],
                id_first=True,
            )
        self.list_item(
            msg,
            "CoreShowChannelsComplete",
            [("EventList", "Complete"), ("ListItems", str(len(chans)))],
            id_first=True,
        )

    async def a_command(self, msg: Message) -> None:
        """Command: one ``Output:`` header per CLI line; unknown commands are an Error [06]."""
        cmd = " ".join((msg.get("Command") or "").split())
        lines = self._cli(cmd)
        if lines is None:
            hint = " ".join(cmd.split()[:2])
            out = [
                f"No such command '{cmd}' "
                f"(type 'core show help {hint}' for other possible commands)"
            ]
            self.reply(
                msg,
                "Error",
                [("Message", "Command output follows"), *[("Output", line) for line in out]],
            )
            return
        self.reply(
            msg,
            "Success",
            [("Message", "Command output follows"), *[("Output", line) for line in lines]],
        )

    def _cli(self, cmd: str) -> list[str] | None:
        low = cmd.lower()
        if low == "core show channels":
            chans = [c for c in self.pbx.channels.values() if not c.destroyed]
            head = (
                f"{'Channel':<64.64} {'Location':<32.32} {'State':<7.7} "
                f"{'Application(Data)':<30.30}"
            )
            rows = [
                f"{c.name:<64.64} {f'{c.exten}@{c.context}:{c.priority}':<32.32} "
                f"{STATE_DESC.get(c.state, 'Unknown'):<7.7} {f'{c.app}({c.appdata})':<30.30}"
                for c in chans
            ]
            calls = len({c.linkedid for c in chans})
            processed = (
                self.pbx.stats_counter["originates"] + self.pbx.stats_counter["inbound_calls"]
            )
            return [
                head,
                *rows,
                f"{len(chans)} active channels",
                f"{calls} active calls",
                f"{processed} calls processed",
            ]
        if low == "core show version":
            return [
                "Asterisk GIT-22-69535d4837 built by dialer-simpbx @ localhost on a x86_64 "
                "running Linux"
            ]
        if low == "core show uptime":
            secs = int(self.pbx.clock.now())
            return [f"System uptime: {secs} seconds", f"Last reload: {secs} seconds"]
        if low in ("core reload", "dialplan reload", "module reload", "manager reload"):
            return []
        return None

    async def a_mixmonitor(self, msg: Message) -> None:
        """MixMonitor: bare Success, then MixMonitorStart on the channel [23]."""
        ch = self._monitor_target(msg)
        if ch is None:
            return
        ch.monitoring = True
        self.reply(msg, "Success", [])
        self.pbx.emit_ch("MixMonitorStart", ch)

    async def a_stopmixmonitor(self, msg: Message) -> None:
        """StopMixMonitor: Success + MixMonitorStop, or the recorded error when not recording."""
        ch = self._monitor_target(msg)
        if ch is None:
            return
        if not ch.monitoring:
            self.error(msg, "Could not stop monitoring channel")
            return
        ch.monitoring = False
        self.reply(msg, "Success", [])
        self.pbx.emit_ch("MixMonitorStop", ch)

    def _monitor_target(self, msg: Message) -> Channel | None:
        name = (msg.get("Channel") or "").strip()
        if not name:
            self.error(msg, "No channel specified")
            return None
        ch = self.pbx.find(name)
        if ch is None:
            self.error(msg, "No such channel")
            return None
        return ch
