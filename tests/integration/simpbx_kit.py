"""Test helpers for the simulator: a small AMI client and a scripted FastAGI server.

Both are deliberately independent of the controller's own AMI/FastAGI layers, so simulator tests
check the simulator against the wire, not against code that could share its mistakes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from dialer.protocol.ami import AmiDecoder, Banner, Message, encode_action, md5_key

WAIT = 10.0  # seconds any single wait may take before the test fails


class AmiClient:
    """Collects every frame from the simulator; waits on predicates, never sleeps."""

    def __init__(self) -> None:
        self.frames: list[Message] = []
        self.banner: str | None = None
        self.closed = asyncio.Event()
        self._cond = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._n = 0

    async def connect(self, port: int) -> None:
        """Open the TCP connection and start reading."""
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        dec = AmiDecoder()
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                frames = dec.feed(data)
                async with self._cond:
                    for fr in frames:
                        if isinstance(fr, Banner):
                            self.banner = fr.text
                        else:
                            self.frames.append(fr)
                    self._cond.notify_all()
        finally:
            self.closed.set()
            async with self._cond:
                self._cond.notify_all()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are."""
        assert self._writer is not None
        self._writer.write(data)

    def send(self, action: str, **headers: object) -> str:
        """Send an action with a fresh ActionID; return the ActionID."""
        self._n += 1
        aid = f"t{self._n}"
        self.send_raw(encode_action(action, headers, action_id=aid))
        return aid

    async def wait_for(
        self, pred: Callable[[Message], bool], limit: float = WAIT, start: int = 0
    ) -> Message:
        """The first frame (from index ``start``) matching ``pred``; waits for it to arrive."""
        async with asyncio.timeout(limit):
            async with self._cond:
                while True:
                    for fr in self.frames[start:]:
                        if pred(fr):
                            return fr
                    if self.closed.is_set():
                        raise AssertionError("connection closed before the awaited frame")
                    await self._cond.wait()

    async def response(self, aid: str, limit: float = WAIT) -> Message:
        """The response to ActionID ``aid``."""
        return await self.wait_for(lambda m: m.kind == "response" and m.action_id == aid, limit)

    async def event(self, name: str, limit: float = WAIT, **match: str) -> Message:
        """The first event ``name`` whose headers equal ``match``."""

        def pred(m: Message) -> bool:
            return m.is_event(name) and all(m.get(k) == v for k, v in match.items())

        return await self.wait_for(pred, limit)

    async def action(self, action: str, **headers: object) -> Message:
        """Send an action and wait for its response."""
        return await self.response(self.send(action, **headers))

    async def login(self, secret: str, *, events: str = "on", md5: bool = False) -> Message:
        """Log in (plain or MD5 challenge)."""
        if md5:
            ch = await self.action("Challenge", AuthType="md5")
            key = md5_key(ch["Challenge"], secret)
            return await self.action(
                "Login", AuthType="md5", Username="dialer", Key=key, Events=events
            )
        return await self.action("Login", Username="dialer", Secret=secret, Events=events)

    def events(self, name: str | None = None) -> list[Message]:
        """Events received so far (optionally only ``name``)."""
        return [m for m in self.frames if m.kind == "event" and (name is None or m.is_event(name))]

    async def close(self) -> None:
        """Close the connection and stop reading."""
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._task


@dataclass
class AgiCall:
    """One FastAGI session as the scripted server saw it."""

    env: dict[str, str]
    path: str
    query: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    transcript: list[tuple[str, str]] = field(default_factory=list)
    raw_in: bytearray = field(default_factory=bytearray)

    async def cmd(self, line: str) -> str:
        """Send one command, return Asterisk's reply line (unsolicited HANGUP lines recorded)."""
        self.writer.write(line.encode() + b"\n")
        self.transcript.append((">>", line))
        async with asyncio.timeout(WAIT):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise AssertionError(f"AGI closed while waiting for the reply to {line!r}")
                self.raw_in += raw
                text = raw.decode().rstrip("\n")
                self.transcript.append(("<<", text))
                if text == "HANGUP":
                    continue
                if text.startswith("520-"):
                    while not text.startswith("520 "):
                        raw = await self.reader.readline()
                        self.raw_in += raw
                        text = raw.decode().rstrip("\n")
                        self.transcript.append(("<<", text))
                return text

    @property
    def got_hangup(self) -> bool:
        """Did Asterisk send the unsolicited HANGUP line?"""
        return ("<<", "HANGUP") in self.transcript

    async def wait_hangup_line(self) -> None:
        """Wait for the unsolicited HANGUP line when no command is pending."""
        async with asyncio.timeout(WAIT):
            while not self.got_hangup:
                raw = await self.reader.readline()
                if not raw:
                    raise AssertionError("AGI closed before HANGUP")
                self.raw_in += raw
                self.transcript.append(("<<", raw.decode().rstrip("\n")))


Route = Callable[[AgiCall], Awaitable[None]]


class ScriptedAgi:
    """A FastAGI server whose routes are test coroutines; it closes each socket after the route."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.calls: list[AgiCall] = []
        self.finished: list[AgiCall] = []
        self.errors: list[BaseException] = []
        self._server: asyncio.Server | None = None
        self._cond = asyncio.Condition()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        raw_env = bytearray()
        while True:
            line = await reader.readline()
            raw_env += line
            if not line or line == b"\n":
                break
            key, _, value = line.decode().rstrip("\n").partition(": ")
            env[key] = value
        parts = urlsplit("/" + env.get("agi_network_script", ""))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        call = AgiCall(env, parts.path.lstrip("/"), query, reader, writer)
        call.raw_in += raw_env
        async with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        route = self.routes.get(call.path)
        try:
            if route is not None:
                await route(call)
        except Exception as exc:  # recorded for the test to assert on
            self.errors.append(exc)
        finally:
            writer.close()
            async with self._cond:
                self.finished.append(call)
                self._cond.notify_all()

    async def wait_calls(
        self, path: str, n: int = 1, limit: float = WAIT, *, done: bool = False
    ) -> list[AgiCall]:
        """Wait until ``n`` sessions for ``path`` arrived (or, with ``done``, finished)."""
        async with asyncio.timeout(limit):
            async with self._cond:
                while True:
                    pool = self.finished if done else self.calls
                    got = [c for c in pool if c.path == path]
                    if len(got) >= n:
                        return got
                    await self._cond.wait()
