"""The asyncio FastAGI server: accept Asterisk's connections, route them, run sessions.

The wire work is in :mod:`dialer.protocol.agi`.  Behaviour others rely on:

* The ``agi_*`` environment is read within ``settings.env_timeout`` seconds and
  ``settings.env_max_bytes`` bytes; a peer that stalls, trickles bytes, floods headers or
  disconnects early only loses its own connection (each connection is its own task, and every
  read either returns data, returns EOF, or times out: nothing spins).
* Routing is on the path of ``agi_network_script`` (leading/trailing slashes ignored).
* The server closes the connection when the handler returns or raises, or when Asterisk
  closed it: Asterisk never closes a FastAGI socket itself, and the call leg stays up until we
  do (traces 18, 26).  A caller hang-up (the ``HANGUP`` line) does *not* end the handler: after
  it, GET VARIABLE and friends still work (trace 22), e.g. to read BRIDGERESULT.
* Cancellation (server shutdown) passes through handlers; their connections are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from dialer.agi.errors import (
    AgiCommandError,
    AgiDeadChannel,
    AgiHangup,
    AgiTimeout,
)
from dialer.protocol.agi import (
    AgiEnvReader,
    AgiErrorReply,
    AgiHangupNotice,
    AgiProtocolError,
    AgiReply,
    AgiReplyDecoder,
    AgiRequest,
    encode_line,
    quote_arg,
)

if TYPE_CHECKING:
    from dialer.config import AgiSettings

log = logging.getLogger(__name__)

AgiHandler = Callable[["AgiSession"], Awaitable[None]]

_READ_SIZE = 1 << 14
_REPLY_TYPES = (AgiReply, AgiErrorReply, AgiHangupNotice)
_CLOSE_TIMEOUT = 2.0


class AgiRouter:
    """Maps request paths (``outbound/answered``, ``agent/login`` ...) to handlers."""

    def __init__(self) -> None:
        self._routes: dict[str, AgiHandler] = {}

    def add(self, path: str, handler: AgiHandler) -> None:
        """Route ``path`` (leading slash optional) to ``handler``; a path is added once."""
        key = path.strip("/")
        if key in self._routes:
            raise ValueError(f"FastAGI route {key!r} is already taken")
        self._routes[key] = handler

    def resolve(self, path: str) -> AgiHandler | None:
        """The handler for ``path``, or None."""
        return self._routes.get(path.strip("/"))

    @property
    def paths(self) -> tuple[str, ...]:
        """Every routed path."""
        return tuple(self._routes)


class AgiSession:
    """One FastAGI conversation with Asterisk about one channel."""

    def __init__(
        self,
        request: AgiRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        settings: AgiSettings,
        pending: bytes = b"",
    ) -> None:
        self.request = request
        self.env: Mapping[str, str] = request.env
        self.path: str = request.path
        self.params: Mapping[str, str] = request.params
        self.channel: str = request.channel
        self.uniqueid: str = request.uniqueid
        self._reader = reader
        self._writer = writer
        self._settings = settings
        self._decoder = AgiReplyDecoder(max_line_bytes=settings.max_line_bytes)
        self._waiters: deque[tuple[str, asyncio.Future[AgiReply | AgiErrorReply]]] = deque()
        self._hung_up = asyncio.Event()
        self._eof = False
        self._pending = pending
        self._read_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ state

    @property
    def hung_up(self) -> bool:
        """True once Asterisk said ``HANGUP`` or closed the connection."""
        return self._hung_up.is_set()

    @property
    def closed(self) -> bool:
        """True once the connection is gone; no command can be sent."""
        return self._eof

    async def wait_hangup(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until the caller hangs up; True if they did within ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hung_up.wait(), timeout)
        return self._hung_up.is_set()

    # ------------------------------------------------------------------ commands

    async def command(
        self,
        line: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the public API takes a timeout
    ) -> AgiReply:
        """Send one raw command line and return its 200 reply.

        ``timeout`` None means ``settings.command_timeout``.  Raises AgiCommandError
        (510/520/other), AgiDeadChannel (511), AgiHangup (connection closed), AgiTimeout.
        """
        return await self._command(
            line, self._settings.command_timeout if timeout is None else timeout
        )

    async def _command(self, line: str, limit: float | None) -> AgiReply:
        """Send ``line``; wait at most ``limit`` seconds (None: until the reply or EOF)."""
        if self._eof:
            raise AgiHangup(f"FastAGI connection closed; {line.split(' ', 1)[0]} not sent")
        data = encode_line(line)
        future: asyncio.Future[AgiReply | AgiErrorReply] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append((line, future))
        try:
            self._writer.write(data)
            async with asyncio.timeout(limit):
                await self._writer.drain()
                reply = await future
        except TimeoutError:
            # The (cancelled) future stays queued: its late reply is read and dropped there,
            # so the next command still gets its own reply.
            raise AgiTimeout(f"AGI {line.split(' ', 1)[0]}: no reply within {limit} s") from None
        except (ConnectionError, OSError) as exc:
            future.cancel()
            raise AgiHangup(f"FastAGI connection lost while sending: {exc}") from None
        if isinstance(reply, AgiErrorReply):
            kind = AgiDeadChannel if reply.code == 511 else AgiCommandError
            raise kind(line, reply.code, reply.message, reply.usage)
        return reply

    async def get_variable(self, name: str) -> str | None:
        """The channel variable (or dialplan function) ``name``; None when it is not set."""
        reply = await self.command(f"GET VARIABLE {quote_arg(name)}")
        if reply.result != "1":
            return None
        return reply.data or ""

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable."""
        await self.command(f"SET VARIABLE {quote_arg(name)} {quote_arg(value)}")

    async def exec(self, app: str, *args: str) -> AgiReply:
        """Run a dialplan application; ``result=-2`` means there is no such application.

        No time limit: ``EXEC Bridge`` lasts the whole conversation (trace 18); the reply or the
        end of the connection ends it.  Wrap it in ``asyncio.timeout`` to bound it.
        """
        line = f"EXEC {quote_arg(app)}"
        if args:
            line += " " + quote_arg(",".join(args))
        return await self._command(line, None)

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiReply:
        """Play a sound file (no time limit); ``result`` = digit code pressed, 0, or -1."""
        return await self._command(
            f"STREAM FILE {quote_arg(name)} {quote_arg(escape_digits)}", None
        )

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``prompt`` and collect up to ``max_digits`` digits ('' when none came).

        Raises AgiHangup if the caller hung up during the prompt (``result=-1``).
        """
        reply = await self.command(
            f"GET DATA {quote_arg(prompt)} {int(timeout_ms)} {int(max_digits)}",
            timeout=self._settings.command_timeout + timeout_ms / 1000.0,
        )
        if reply.result == "-1":
            self._hung_up.set()
            raise AgiHangup("caller hung up during GET DATA")
        return reply.result

    async def hangup(self) -> None:
        """Hang up the channel; a channel that is already gone is not an error."""
        with contextlib.suppress(AgiDeadChannel, AgiHangup):
            await self.command("HANGUP")

    async def verbose(self, msg: str, level: int = 1) -> None:
        """Write ``msg`` to Asterisk's verbose log."""
        await self.command(f"VERBOSE {quote_arg(msg)} {int(level)}")

    async def answer(self) -> None:
        """Answer the channel."""
        await self.command("ANSWER")

    async def noop(self, msg: str = "") -> None:
        """Do nothing (a round trip: shows the session is alive)."""
        await self.command(f"NOOP {quote_arg(msg)}" if msg else "NOOP")

    # ------------------------------------------------------------------ plumbing

    def _start(self) -> None:
        self._read_task = asyncio.create_task(self._read_loop(), name=f"agi-read-{self.path}")

    async def _read_loop(self) -> None:
        reason = "FastAGI connection closed by Asterisk"
        try:
            if self._pending:
                self._dispatch(self._decoder.feed(self._pending))
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    self._dispatch(self._decoder.eof())
                    break
                self._dispatch(self._decoder.feed(data))
        except AgiProtocolError as exc:
            # Replies that arrived intact before the fault still answer their commands.
            self._dispatch([i for i in exc.items if isinstance(i, _REPLY_TYPES)])
            reason = f"FastAGI protocol error: {exc}"
            log.warning("%s on %s (%s)", reason, self.channel, self.path)
        except (ConnectionError, OSError) as exc:
            reason = f"FastAGI connection lost: {exc}"
        finally:
            self._eof = True
            self._hung_up.set()  # end of stream counts as hang-up
            while self._waiters:
                _, future = self._waiters.popleft()
                if not future.done():
                    future.set_exception(AgiHangup(reason))
            if not self._writer.is_closing():
                self._writer.close()

    def _dispatch(self, items: list[AgiReply | AgiErrorReply | AgiHangupNotice]) -> None:
        for item in items:
            if isinstance(item, AgiHangupNotice):
                self._hung_up.set()
                continue
            if not self._waiters:
                log.warning("FastAGI reply with no command pending on %s: %r", self.channel, item)
                continue
            _, future = self._waiters.popleft()
            if not future.done():  # a timed-out command's reply is dropped here
                future.set_result(item)

    async def _close(self) -> None:
        self._eof = True
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), _CLOSE_TIMEOUT)
        task = self._read_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise asyncio.CancelledError  # ours, not the reader's: pass it on


class AgiServer:
    """The FastAGI listener: one task per connection, routed by path."""

    def __init__(self, settings: AgiSettings, router: AgiRouter) -> None:
        self._settings = settings
        self._router = router
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False  # close() is cancelling the connection tasks on purpose
        self.sessions_started = 0  # counters for logs and tests
        self.sessions_rejected = 0

    async def start(self) -> None:
        """Bind and start accepting (``settings.port`` 0 picks a free port)."""
        if self._server is not None:
            return
        s = self._settings
        self._server = await asyncio.start_server(self._accept, s.listen_host, s.port)
        log.info("FastAGI listening on %s:%s", s.listen_host, self.port)

    @property
    def port(self) -> int:
        """The port actually bound."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAGI server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def active(self) -> int:
        """Connections being served right now (reading the environment or in a handler)."""
        return len(self._tasks)

    async def wait_idle(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until no connection is being served (TimeoutError after ``timeout``)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def serve_forever(self) -> None:
        """Start if needed and serve until cancelled; cancellation closes everything."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, cancel running sessions and close their connections."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _CLOSE_TIMEOUT)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._idle.clear()
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # close() cancelled this connection on purpose and nobody awaits this task but
            # close() itself: end quietly, or asyncio's stream callback logs the cancellation
            # of every call still up at shutdown as an error.
        finally:
            try:
                if not writer.is_closing():
                    writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), _CLOSE_TIMEOUT)
            finally:
                self._tasks.discard(task)
                if not self._tasks:
                    self._idle.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            got = await asyncio.wait_for(self._read_env(reader), self._settings.env_timeout)
        except TimeoutError:
            self.sessions_rejected += 1
            log.warning(
                "FastAGI peer %s: no complete environment within %s s",
                peer,
                self._settings.env_timeout,
            )
            return
        except AgiProtocolError as exc:
            self.sessions_rejected += 1
            log.warning("FastAGI peer %s: %s", peer, exc)
            return
        except (ConnectionError, OSError) as exc:
            self.sessions_rejected += 1
            log.info("FastAGI peer %s: connection lost during the environment: %s", peer, exc)
            return
        if got is None:
            self.sessions_rejected += 1
            log.info("FastAGI peer %s disconnected before the end of its environment", peer)
            return
        request, rest = got
        handler = self._router.resolve(request.path)
        if handler is None:
            self.sessions_rejected += 1
            log.warning("FastAGI: no route for %r (channel %s)", request.path, request.channel)
            return
        session = AgiSession(request, reader, writer, self._settings, rest)
        self.sessions_started += 1
        session._start()
        try:
            await handler(session)
        except AgiHangup as exc:
            log.info("FastAGI %s on %s ended by hang-up: %s", request.path, request.channel, exc)
        except Exception:
            log.exception(
                "FastAGI handler for %r failed (channel %s)", request.path, request.channel
            )
        finally:
            await session._close()

    async def _read_env(self, reader: asyncio.StreamReader) -> tuple[AgiRequest, bytes] | None:
        env = AgiEnvReader(max_bytes=self._settings.env_max_bytes)
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                return None
            got = env.feed(data)
            if got is not None:
                return got
