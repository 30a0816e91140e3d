"""A scripted fake AMI server for client tests: speaks Asterisk 22's AMI on loopback.

It answers Challenge/Login/Ping/Logoff like the traces (01-05, 27) and hands every other
action to a per-test ``on_action`` coroutine.  Everything it receives is recorded so tests can
assert on the wire (e.g. that an Originate was sent exactly once across reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from dialer.protocol.ami import AmiDecoder, Message, encode_banner, encode_headers, md5_key

OnAction = Callable[["FakeConn", Message], Awaitable[None]]


class FakeConn:
    """One client connection to the fake server."""

    def __init__(self, server: FakeAmi, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.challenge = "213370826"
        self.logged_in = False
        self.closed = asyncio.Event()

    def send(self, headers: Iterable[tuple[str, str]]) -> None:
        """Write one message."""
        if not self.writer.is_closing():
            self.writer.write(encode_headers(list(headers)))

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (e.g. a slice of a recorded trace)."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def reply(self, action: Message, response: str, *more: tuple[str, str]) -> None:
        """Answer ``action`` with ``Response: response`` and its ActionID."""
        headers = [("Response", response)]
        if action.action_id is not None:
            headers.append(("ActionID", action.action_id))
        headers.extend(more)
        self.send(headers)

    def event(self, name: str, *more: tuple[str, str]) -> None:
        """Send an unsolicited event."""
        self.send([("Event", name), ("Privilege", "call,all"), *more])

    def close(self) -> None:
        """Close the connection (like Asterisk after a failed login or a shutdown)."""
        self.writer.close()


class FakeAmi:
    """The server: start() it, point AmiSettings at ``port``."""

    def __init__(
        self,
        *,
        username: str = "dialer",
        secret: str = "s3cret-pass",
        on_action: OnAction | None = None,
        answer_pings: bool = True,
    ) -> None:
        self.username = username
        self.secret = secret
        self.on_action = on_action
        self.answer_pings = answer_pings
        self.actions: list[Message] = []
        self.conns: list[FakeConn] = []
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on an ephemeral loopback port; return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for conn in self.conns:
            conn.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop_listening(self) -> None:
        """Refuse new connections (Asterisk down)."""
        if self._server is not None:
            self._server.close()

    def named(self, name: str) -> list[Message]:
        """Every received action called ``name``."""
        return [a for a in self.actions if a.name.lower() == name.lower()]

    async def wait_for(self, predicate: Callable[[], bool], limit: float = 5.0) -> None:
        """Wait (no polling) until ``predicate()`` holds after some wire activity."""
        async with asyncio.timeout(limit):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        conn = FakeConn(self, reader, writer)
        self.conns.append(conn)
        writer.write(encode_banner())
        await self._notify()
        decoder = AmiDecoder(expect_banner=False)
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                for msg in decoder.feed(data):
                    assert isinstance(msg, Message)
                    self.actions.append(msg)
                    await self._answer(conn, msg)
                    await self._notify()
        except (ConnectionError, OSError):
            pass
        finally:
            conn.closed.set()
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                await self._notify()

    async def _answer(self, conn: FakeConn, action: Message) -> None:
        name = action.name.lower()
        if name == "challenge":
            conn.reply(action, "Success", ("Challenge", conn.challenge))
        elif name == "login":
            key = action.get("Key")
            good_user = action.get("Username") == self.username
            if key is not None:
                ok = good_user and key == md5_key(conn.challenge, self.secret)
            else:
                ok = good_user and action.get("Secret") == self.secret
            if ok:
                conn.logged_in = True
                conn.reply(action, "Success", ("Message", "Authentication accepted"))
                conn.send(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", "2"),
                        ("LastReload", "2"),
                        ("Status", "Fully Booted"),
                    ]
                )
            else:
                # Asterisk answers a refused login, then closes the socket (trace 02).
                conn.reply(action, "Error", ("Message", "Authentication failed"))
                await conn.writer.drain()
                conn.close()
        elif not conn.logged_in:
            conn.reply(action, "Error", ("Message", "Permission denied"))
        elif name == "ping":
            if self.answer_pings:
                conn.reply(action, "Success", ("Ping", "Pong"), ("Timestamp", "1795908124.1"))
        elif name == "logoff":
            conn.reply(action, "Goodbye", ("Message", "Thanks for all the fish."))
            await conn.writer.drain()
            conn.close()
        elif self.on_action is not None:
            await self.on_action(conn, action)
        else:
            conn.reply(
                action,
                "Error",
                (
                    "Message",
                    f"Invalid/unknown command: {action.name}. Use Action: "
                    "ListCommands to show available commands.",
                ),
            )
