"""The asyncio AMI client: one TCP link to Asterisk, kept up, with actions and events.

The wire work is done by the sans-I/O codec in :mod:`dialer.protocol.ami`; this module adds
sockets, time and tasks.  Behaviour others rely on (facts from ../shared/asterisk/README.md):

* Login is MD5 challenge or plain, per ``settings.auth`` (trace 03 / 01).  A refused login
  raises :class:`AmiAuthError` out of :meth:`AmiClient.run` (Asterisk answers after ~1 s and
  closes the socket, trace 02): retrying a wrong secret would only fill Asterisk's log.
* Any other loss (refused connect, EOF, Asterisk shutdown (trace 27), silence longer than
  ``settings.dead_after``) reconnects with capped exponential backoff and jitter.
* A pending action is *never* re-sent on the next link: it fails with :class:`AmiLinkLost`
  and the caller reconciles (an Originate re-sent would ring the customer twice).
* List actions (``EventList: start`` ... ``*Complete``) return their items in
  :attr:`AmiResult.events`; every event, list items included, is *also* delivered to
  subscribers (nothing that arrived is hidden; list items carry the ActionID and no
  Timestamp).  ``OriginateResponse`` is an ordinary event (after the action's own Response).
  An event no subscriber asked for is not queued at all (a channel listing with 500 agents is
  a thousand list items that would otherwise wait in line before the events that matter).
* Events go through a bounded queue to subscribers, in order, one at a time.  When the queue
  is full the reader waits (back-pressure onto TCP) instead of dropping events, and the
  watchdog does not count that wait as silence.  A subscriber that raises is logged and
  skipped; the link is not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any

from dialer.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiLinkLost,
    AmiNotConnected,
    AmiTimeout,
)
from dialer.protocol.ami import (
    ActionResult,
    ActionTracker,
    AmiDecoder,
    AmiProtocolError,
    Banner,
    Message,
    encode_action,
    md5_key,
)

if TYPE_CHECKING:
    from dialer.config import AmiSettings

log = logging.getLogger(__name__)

EventHandler = Callable[[Message], Awaitable[None] | None]
ConnectHook = Callable[["AmiClient"], Awaitable[None]]
Headers = Mapping[str, object] | Iterable[tuple[str, object]]

_ALL = "*"
_READ_SIZE = 1 << 16


def backoff_delays(initial: float, cap: float, rng: random.Random | None = None) -> Iterator[float]:
    """Reconnect pauses: exponential from ``initial``, capped at ``cap``, with jitter.

    Each pause is uniform in [d/2, d] for the current step d, so many clients restarted
    together (or one Asterisk restart seen by several controllers) do not reconnect in step.
    """
    draw = rng if rng is not None else random.Random()
    step = initial
    while True:
        yield step * draw.uniform(0.5, 1.0)
        step = min(step * 2, cap)


@dataclass(frozen=True, slots=True)
class AmiResult:
    """An action's outcome: its Response and, for EventList actions, the list items."""

    response: Message
    events: tuple[Message, ...] = ()
    complete: Message | None = None

    @property
    def ok(self) -> bool:
        """True unless Asterisk answered ``Response: Error``."""
        return self.response.name.lower() != "error"

    @property
    def message(self) -> str:
        """The response's ``Message`` header ('' when absent, e.g. Getvar, Events)."""
        return self.response.get("Message") or ""


def _split_action_id(headers: Headers | None) -> tuple[list[tuple[str, object]], str | None]:
    """The headers without ``ActionID``, and the caller's ActionID if it gave one."""
    if headers is None:
        return [], None
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    action_id: str | None = None
    rest: list[tuple[str, object]] = []
    for key, value in items:
        if key.lower() == "actionid":
            action_id = str(value)
        else:
            rest.append((key, value))
    return rest, action_id


class AmiClient:
    """A long-lived AMI connection: login, reconnect, watchdog, actions and event fan-out."""

    def __init__(self, settings: AmiSettings, *, on_connect: ConnectHook | None = None) -> None:
        self._settings = settings
        self._on_connect = on_connect
        self._tracker = ActionTracker()
        self._futures: dict[str, asyncio.Future[ActionResult]] = {}
        self._ids = count(1)
        # Never reused across links: a late answer from an old link can match nothing.
        self._id_prefix = secrets.token_hex(3)
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._stopped = asyncio.Event()
        self._fatal: BaseException | None = None
        self._closing = False
        self._running = False
        self._events: asyncio.Queue[Message] = asyncio.Queue(settings.event_queue_size)
        self._handlers: dict[str, list[EventHandler]] = {}
        self._last_rx = 0.0
        self._reader_blocked = False
        self._down_reason = ""
        self._background: set[asyncio.Task[object]] = set()
        self.links = 0  # how many times a login succeeded (for logs and tests)

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """True while a link is up and logged in."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until logged in; AmiTimeout on timeout, or run()'s fatal error (AmiAuthError)."""
        if self._fatal is not None:
            raise self._fatal
        waiters = [
            asyncio.ensure_future(self._connected.wait()),
            asyncio.ensure_future(self._stopped.wait()),
        ]
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._connected.is_set():
            return
        if self._fatal is not None:
            raise self._fatal
        if not done:
            raise AmiTimeout(f"AMI not connected within {timeout} s")
        raise AmiNotConnected("AMI client stopped")

    async def action(
        self,
        name: str,
        headers: Headers | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the public API takes a timeout
    ) -> AmiResult:
        """Send one action and wait for its result (list items gathered for EventLists).

        The client sets a fresh ActionID; a caller may give its own in ``headers`` (e.g. the
        call id on an Originate, so that the later OriginateResponse can be matched even when
        its Uniqueid is ``<unknown>``, trace 17); it must not be pending already (ValueError).
        Raises AmiActionError (Response: Error), AmiTimeout, AmiLinkLost, AmiNotConnected.
        """
        if not self._connected.is_set():
            raise AmiNotConnected(f"AMI not connected; {name} not sent")
        result = await self._request(name, headers, timeout)
        if not result.ok:
            raise AmiActionError(name, result)
        return result

    def subscribe(self, handler: EventHandler, *event_names: str) -> Callable[[], None]:
        """Call ``handler`` for the named events (case-insensitive; none = all); return unsub.

        Handlers run one at a time in arrival order; an async handler is awaited before the
        next event is dispatched, so a slow handler delays the others (keep them short).
        """
        keys = [n.lower() for n in event_names] or [_ALL]
        for key in keys:
            self._handlers.setdefault(key, []).append(handler)

        def unsubscribe() -> None:
            for key in keys:
                handlers = self._handlers.get(key, [])
                with contextlib.suppress(ValueError):
                    handlers.remove(handler)

        return unsubscribe

    async def close(self) -> None:
        """Stop: drop the link, fail pending actions with AmiLinkLost, make run() return."""
        self._closing = True
        self._stopped.set()
        writer = self._writer
        if writer is not None:
            writer.close()
        self._fail_pending("AMI client closed")

    async def run(self) -> None:
        """Connect, log in and keep the link up until cancelled or closed.

        Raises AmiAuthError when Asterisk refuses the login.
        """
        if self._running:
            raise RuntimeError("AmiClient.run() is already running")
        self._running = True
        self._stopped.clear()
        dispatcher = asyncio.create_task(self._dispatch_events(), name="ami-events")
        s = self._settings
        delays = backoff_delays(s.backoff_initial, s.backoff_max)
        try:
            while not self._closing:
                logged_in = await self._one_link()
                if self._closing:
                    break
                if logged_in:  # a link that worked starts the backoff over
                    delays = backoff_delays(s.backoff_initial, s.backoff_max)
                pause = next(delays)
                log.info("AMI reconnect to %s:%s in %.2f s", s.host, s.port, pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), pause)
        except AmiAuthError as exc:
            self._fatal = exc
            raise
        finally:
            self._running = False
            self._stopped.set()
            self._connected.clear()
            self._fail_pending("AMI client stopped")
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
            for task in list(self._background):
                task.cancel()

    # ------------------------------------------------------------------ one link

    async def _one_link(self) -> bool:
        """Run one connection to its end; True if the login had succeeded."""
        s = self._settings
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port), s.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            log.warning("AMI connect to %s:%s failed: %s", s.host, s.port, exc or "timeout")
            return False
        self._writer = writer
        self._down_reason = ""
        loop = asyncio.get_running_loop()
        self._last_rx = loop.time()
        banner: asyncio.Future[Banner] = loop.create_future()
        read_task = asyncio.create_task(self._read_loop(reader, banner), name="ami-reader")
        tasks: list[asyncio.Future[Any]] = []
        logged_in = False
        try:
            await asyncio.wait_for(asyncio.shield(banner), s.connect_timeout)
            await self._login()
            logged_in = True
            self.links += 1
            self._connected.set()
            log.info("AMI logged in to %s:%s as %s", s.host, s.port, s.username)
            tasks.append(asyncio.create_task(self._watchdog(writer), name="ami-watchdog"))
            if self._on_connect is not None:
                tasks.append(asyncio.create_task(self._run_hook(), name="ami-on-connect"))
            stop = asyncio.ensure_future(self._stopped.wait())
            tasks.append(stop)
            await asyncio.wait([read_task, stop], return_when=asyncio.FIRST_COMPLETED)
        except AmiAuthError:
            raise
        except (AmiLinkLost, AmiTimeout, TimeoutError, OSError) as exc:
            log.warning("AMI link to %s:%s failed during login: %s", s.host, s.port, exc)
        finally:
            self._connected.clear()
            for task in tasks:
                task.cancel()
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await read_task
            writer.transport.abort()  # nothing is worth flushing on a link we give up
            self._writer = None
            reason = self._down_reason or "link closed"
            self._fail_pending(f"AMI link lost: {reason}")
            if logged_in and not self._closing:
                log.warning("AMI link to %s:%s lost: %s", s.host, s.port, reason)
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise asyncio.CancelledError  # a cancel that landed while tearing down
        return logged_in

    async def _login(self) -> None:
        s = self._settings
        secret = s.secret.get_secret_value()
        timeout = max(s.action_timeout, 3.0)  # Asterisk delays a refusal by ~1 s (trace 02)
        fields: dict[str, object] = {"Username": s.username}
        if s.auth == "md5":
            challenge = await self._request("Challenge", {"AuthType": "md5"}, timeout)
            code = challenge.response.get("Challenge")
            if not challenge.ok or not code:
                raise AmiAuthError(f"AMI MD5 challenge refused: {challenge.message}")
            fields.update(AuthType="md5", Key=md5_key(code, secret))
        else:
            fields["Secret"] = secret
        fields["Events"] = "on"
        result = await self._request("Login", fields, timeout)
        if not result.ok:
            raise AmiAuthError(
                f"AMI login as {s.username!r} refused: {result.message or 'no reason given'}"
            )

    async def _run_hook(self) -> None:
        assert self._on_connect is not None
        try:
            await self._on_connect(self)
        except (AmiLinkLost, AmiNotConnected) as exc:
            log.warning("AMI on_connect hook interrupted: %s", exc)
        except Exception:
            log.exception("AMI on_connect hook failed")

    # ------------------------------------------------------------------ actions

    async def _request(
        self,
        name: str,
        headers: Headers | None,
        timeout: float | None,  # noqa: ASYNC109
    ) -> AmiResult:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise AmiNotConnected(f"AMI not connected; {name} not sent")
        pairs, action_id = _split_action_id(headers)
        if action_id is None:
            action_id = f"{self._id_prefix}-{next(self._ids)}"
        elif action_id in self._tracker:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        data = encode_action(name, pairs, action_id)  # ValueError before anything is sent
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._tracker.start(action_id)
        self._futures[action_id] = future
        limit = self._settings.action_timeout if timeout is None else timeout
        try:
            writer.write(data)
            async with asyncio.timeout(limit):
                await writer.drain()
                done = await future
        except TimeoutError:
            raise AmiTimeout(f"AMI {name} got no answer within {limit} s") from None
        except (ConnectionError, OSError) as exc:
            raise AmiLinkLost(f"AMI {name}: link lost while sending ({exc})") from None
        finally:
            self._futures.pop(action_id, None)
            self._tracker.forget(action_id)
        return AmiResult(done.response, done.events, done.complete)

    def _fail_pending(self, reason: str) -> None:
        self._tracker.clear()
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(AmiLinkLost(reason))

    # ------------------------------------------------------------------ reading

    async def _read_loop(
        self, reader: asyncio.StreamReader, banner: asyncio.Future[Banner]
    ) -> None:
        decoder = AmiDecoder(max_message_bytes=self._settings.max_message_bytes)
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    self._down_reason = self._down_reason or "connection closed by Asterisk"
                    break
                self._last_rx = loop.time()
                try:
                    frames = decoder.feed(data)
                except AmiProtocolError as exc:
                    for frame in exc.frames:
                        await self._handle(frame, banner)
                    self._down_reason = f"protocol error: {exc}"
                    break
                for frame in frames:
                    await self._handle(frame, banner)
        except (ConnectionError, OSError) as exc:
            self._down_reason = self._down_reason or f"read failed: {exc}"
        finally:
            # Fail waiters now, not when the link is torn down: login may be waiting.
            self._fail_pending(f"AMI link lost: {self._down_reason or 'reader stopped'}")
            if not banner.done():
                banner.set_exception(AmiLinkLost(self._down_reason or "no banner"))
                banner.exception()  # retrieved: nobody may be waiting any more

    async def _handle(self, frame: Banner | Message, banner: asyncio.Future[Banner]) -> None:
        if isinstance(frame, Banner):
            if not banner.done():
                banner.set_result(frame)
            return
        if frame.kind == "event" and self._wanted(frame.name):
            if self._events.full():
                self._reader_blocked = True
                try:
                    await self._events.put(frame)
                finally:
                    self._reader_blocked = False
                    self._last_rx = asyncio.get_running_loop().time()
            else:
                self._events.put_nowait(frame)
        done = self._tracker.feed(frame)
        if done is not None:
            future = self._futures.pop(done.action_id, None)
            if future is not None and not future.done():
                future.set_result(done)

    def _wanted(self, name: str) -> bool:
        """Some subscriber takes events of this name (or every event)."""
        return bool(self._handlers.get(_ALL)) or bool(self._handlers.get(name.lower()))

    # ------------------------------------------------------------------ watchdog

    async def _watchdog(self, writer: asyncio.StreamWriter) -> None:
        """Ping when idle; declare the link dead after ``dead_after`` seconds of silence."""
        s = self._settings
        loop = asyncio.get_running_loop()
        tick = min(s.ping_interval, s.dead_after) / 2
        last_ping = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            if self._reader_blocked:
                continue  # we are the slow side, not the link
            idle = now - self._last_rx
            if idle >= s.dead_after:
                self._down_reason = f"no data from Asterisk for {idle:.1f} s (watchdog)"
                log.warning("AMI watchdog: %s", self._down_reason)
                if writer.transport is not None:
                    writer.transport.abort()
                return
            if idle >= s.ping_interval and now - last_ping >= s.ping_interval:
                last_ping = now
                self._spawn(self._ping())

    async def _ping(self) -> None:
        with contextlib.suppress(AmiTimeout, AmiLinkLost, AmiNotConnected):
            await self._request("Ping", None, self._settings.dead_after)

    def _spawn(self, coro: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ events

    async def _dispatch_events(self) -> None:
        while True:
            msg = await self._events.get()
            handlers = (*self._handlers.get(msg.name.lower(), ()), *self._handlers.get(_ALL, ()))
            for handler in handlers:
                try:
                    outcome = handler(msg)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    log.exception("AMI event handler %r failed on %s", handler, msg.name)
