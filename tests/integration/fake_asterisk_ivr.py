"""A scripted inbound caller speaking FastAGI like Asterisk 22 (traces 22 and 26), for IVR tests.

It connects to a real :class:`~dialer.agi.server.AgiServer` on loopback, sends the ``agi_*``
environment of an inbound PJSIP call, and answers each command from a script of key presses:

* ``GET DATA``: the next entry of ``keys``: digits -> ``200 result=<digits>``; ``""`` ->
  ``200 result= (timeout)``; ``"HANGUP"`` -> ``200 result=-1`` then the ``HANGUP`` line;
* ``STREAM FILE`` with escape digits: an entry ``"!<d>"`` at the head of ``keys`` interrupts it
  (``200 result=<ord(d)> endpos=...``); ``"HANGUP-PROMPT"`` hangs up during it
  (``200 result=-1 endpos=...``, then ``HANGUP``);
* after the hang-up, commands that need a live channel get 511 (trace 22);
* ``EXEC Bridge`` answers when the test says so (``bridge_results``), ``GET VARIABLE
  BRIDGERESULT`` / ``RECORD_STATUS`` answer what the script says.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from dialer.protocol.agi import parse_args

DEAD_OK = ("GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "EXEC", "NOOP", "VERBOSE")


@dataclass
class FakeCaller:
    """One inbound call's script and what the server sent it."""

    did: str = "5551000"
    caller: str = "+919812345678"
    uniqueid: str = "1795908192.193"
    keys: list[str] = field(default_factory=list)
    record_status: str = "SILENCE"
    bridge_results: list[str] = field(default_factory=lambda: ["SUCCESS"])
    hold_bridge: bool = False  # keep EXEC Bridge running until release_bridge is set
    commands: list[str] = field(default_factory=list)
    dead: bool = False
    seen: asyncio.Event = field(default_factory=asyncio.Event)
    release_bridge: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _bridge_result: str = ""
    _writer: asyncio.StreamWriter | None = None

    def env(self, port: int) -> bytes:
        script = f"ivr/main?did={self.did}"
        pairs = [
            ("network", "yes"),
            ("network_script", script),
            ("request", f"agi://127.0.0.1:{port}/{script}"),
            ("channel", "PJSIP/carrier-00000015"),
            ("language", "en"),
            ("type", "PJSIP"),
            ("uniqueid", self.uniqueid),
            ("version", "GIT-22-69535d4837"),
            ("callerid", self.caller),
            ("calleridname", "Caller"),
            ("dnid", self.did),
            ("context", "dialer-inbound"),
            ("extension", self.did),
            ("priority", "3"),
        ]
        return "".join(f"agi_{k}: {v}\n" for k, v in pairs).encode() + b"\n"

    def count(self, prefix: str) -> int:
        return sum(1 for c in self.commands if c.startswith(prefix))

    async def wait_for(self, prefix: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the server has sent a command starting with ``prefix``."""
        async with asyncio.timeout(timeout):
            while not any(c.startswith(prefix) for c in self.commands):
                self.seen.clear()
                await self.seen.wait()

    def hang_up_now(self) -> None:
        """The caller hangs up while no command is pending: the unsolicited HANGUP line."""
        self.dead = True
        assert self._writer is not None
        self._writer.write(b"HANGUP\n")

    async def run(self, port: int) -> None:
        """Connect, send the environment, answer until the server closes the socket."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self._writer = writer
        writer.write(self.env(port))
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                text = line.decode().rstrip("\n")
                self.commands.append(text)
                self.seen.set()
                for chunk in await self._reply(text):
                    writer.write(chunk)
                await writer.drain()
        finally:
            self.closed.set()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _reply(self, line: str) -> list[bytes]:
        words = parse_args(line)
        head2 = " ".join(words[:2]).upper()
        head1 = words[0].upper() if words else ""
        if self.dead and head2 not in DEAD_OK and head1 not in DEAD_OK:
            return [b"511 Command Not Permitted on a dead channel or intercept routine\n"]
        if head2 == "GET DATA":
            key = self.keys.pop(0) if self.keys else ""
            if key == "HANGUP":
                self.dead = True
                return [b"200 result=-1\n", b"HANGUP\n"]
            if key.startswith("!"):
                key = key[1:]
            return [b"200 result= (timeout)\n" if key == "" else f"200 result={key}\n".encode()]
        if head2 == "STREAM FILE":
            escape = words[3] if len(words) > 3 else ""
            if self.keys and self.keys[0] == "HANGUP-PROMPT":
                self.keys.pop(0)
                self.dead = True
                return [b"200 result=-1 endpos=1200\n", b"HANGUP\n"]
            if escape and self.keys and self.keys[0].startswith("!"):
                digit = self.keys.pop(0)[1]
                return [f"200 result={ord(digit)} endpos=800\n".encode()]
            return [b"200 result=0 endpos=6291\n"]
        if head2 == "GET VARIABLE":
            name = words[2]
            value = {"BRIDGERESULT": self._bridge_result, "RECORD_STATUS": self.record_status}
            got = value.get(name, "")
            return [f"200 result=1 ({got})\n".encode() if got else b"200 result=0\n"]
        if head1 == "EXEC" and words[1].lower() == "bridge":
            self._bridge_result = self.bridge_results.pop(0) if self.bridge_results else "SUCCESS"
            if self.hold_bridge and self._bridge_result == "SUCCESS":
                await self.release_bridge.wait()
            return [b"200 result=0\n"]
        if head1 == "HANGUP":
            self.dead = True
            return [b"200 result=1\n", b"HANGUP\n"]
        return [b"200 result=0\n" if head1 == "EXEC" else b"200 result=1\n"]


@dataclass
class Peers:
    """Several fake callers run against one server."""

    port: int
    tasks: deque[asyncio.Task[None]] = field(default_factory=deque)

    def call(self, caller: FakeCaller) -> asyncio.Task[None]:
        task = asyncio.ensure_future(caller.run(self.port))
        self.tasks.append(task)
        return task
