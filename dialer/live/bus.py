"""The supervisor command bus: the CLI asks, the controller's engine answers, one reply each.

Client side (the ``dialer`` CLI, any terminal)::

    async with RedisBus.connect(url, prefix) as bus:
        reply = await bus.request("agent.pause", {"agent": "1001", "reason": "break"})

Controller side::

    await serve(bus, engine.submit, audit=write_audit_row)

Over Redis (``<prefix>`` = ``settings.redis.key_prefix``):

* ``<prefix>ctl:heartbeat`` -- set by the serving controller every second with a 3-second TTL.
  A client checks it first: no controller running -> :class:`NoController` at once, not a hang.
* ``<prefix>bus:in:<user>`` -- one stream per supervisor, ``<user>`` being the connection's
  Redis ACL user (``ACL WHOAMI``).  The controller takes "who" from the stream's name, so with
  the ACL from :func:`supervisor_acl_rules` (each supervisor may write only their own stream)
  the audit log's "who" is what Redis authenticated, never what a client claims.
* ``<prefix>bus:doorbell`` -- a capped stream of user names that wakes the controller for a
  supervisor's first command (it then follows that supervisor's stream too).
* ``<prefix>bus:reply:<user>:<id>`` -- a list holding the one reply; the client BLPOPs it with
  the command's timeout; it expires after ``reply_ttl`` seconds.

A command is claimed by deleting its entry (``XDEL`` answers 1 to exactly one taker), so it runs
at most once even with a controller restarting or a second one running; a command older than
its timeout when the controller sees it is dropped unrun.  When a client times out it tries to
withdraw its entry, so it can say whether the command certainly did not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from dialer.engine.commands import FAILED, Command, Reply
from dialer.live.connection import (
    LiveError,
    describe_error,
    open_redis,
    reraise_swallowed_cancel,
    scrub,
    whoami,
)

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "ctl:heartbeat"
DOORBELL_KEY = "bus:doorbell"
INBOX_PREFIX = "bus:in:"
REPLY_PREFIX = "bus:reply:"

Submit = Callable[[Command], Awaitable[Reply]]


class BusError(LiveError):
    """The command did not get an answer; the message is one line for the supervisor."""


class NoController(BusError):
    """No controller is serving the bus (no heartbeat)."""


class BusTimeout(BusError):
    """The controller did not answer in time."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One supervisor command as the audit log keeps it: who, what, when, the result."""

    at: datetime
    actor: str
    command: str
    args: Mapping[str, Any]
    ok: bool
    code: str
    message: str
    origin: str = ""  # the client's own description (OS user@host), informational only
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


Audit = Callable[[AuditRecord], Awaitable[None]]
Handler = Callable[[Command, str], Awaitable[Reply]]


class CommandBus(Protocol):
    """What the CLI uses to talk to a running controller."""

    async def request(
        self, name: str, args: Mapping[str, Any] | None = None, *, within: float | None = None
    ) -> Reply:
        """Send one command, wait for its reply; raise :class:`BusError` if none comes."""

    async def controller_running(self) -> bool:
        """Whether a controller is serving the bus now."""

    async def identity(self) -> str:
        """Who this client is, as the audit log will say."""


def origin_label() -> str:
    """``osuser@host`` of this process, recorded next to the authenticated identity."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


# --------------------------------------------------------------------------- controller side


async def serve(bus: Any, submit: Submit, *, audit: Audit | None = None) -> None:
    """Serve supervisor commands from ``bus`` with ``submit`` until cancelled; audit each one."""

    async def handle(cmd: Command, origin: str) -> Reply:
        try:
            reply = await submit(cmd)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing command must not take the bus down
            log.exception("bus: command %s failed", cmd.name)
            reply = Reply(False, FAILED, f"{cmd.name}: {type(exc).__name__}: {exc}")
        if audit is not None:
            record = AuditRecord(
                at=datetime.now(UTC),
                actor=cmd.actor,
                command=cmd.name,
                args=MappingProxyType(dict(cmd.args)),
                ok=reply.ok,
                code=reply.code,
                message=reply.message,
                origin=origin,
                data=reply.data,
            )
            try:
                await audit(record)
            except asyncio.CancelledError:
                raise
            except Exception:  # the reply still goes; the failure is loud in the log
                log.exception("bus: audit write failed for %s by %s", cmd.name, cmd.actor)
        return reply

    await bus.serve_forever(handle)


# --------------------------------------------------------------------------- in process


@dataclass(slots=True)
class _Pending:
    cmd: Command
    origin: str
    reply: asyncio.Future[Reply]


class LocalBus:
    """The bus inside one process (the demo, tests): same behaviour, no Redis."""

    def __init__(self, *, actor: str | None = None, timeout: float = 5.0) -> None:
        """A bus whose commands are signed ``actor`` (default: the OS user)."""
        self._actor = actor or origin_label().split("@", 1)[0]
        self._timeout = timeout
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._serving = 0
        self.ready = asyncio.Event()  # set once a controller serves this bus

    async def identity(self) -> str:
        """The actor commands are signed with."""
        return self._actor

    async def controller_running(self) -> bool:
        """Whether :func:`serve` runs on this bus."""
        return self._serving > 0

    async def request(
        self, name: str, args: Mapping[str, Any] | None = None, *, within: float | None = None
    ) -> Reply:
        """Hand the command to the serving task and wait for its reply."""
        if not self._serving:
            raise NoController("no controller is running in this process")
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        item = _Pending(Command(name, dict(args or {}), self._actor), origin_label(), fut)
        self._queue.put_nowait(item)
        limit = self._timeout if within is None else within
        try:
            return await asyncio.wait_for(asyncio.shield(fut), limit)
        except TimeoutError:
            raise BusTimeout(f"the controller did not answer {name} within {limit:g} s") from None

    async def serve_forever(self, handle: Handler) -> None:
        """Take commands one by one and run each in its own task."""
        self._serving += 1
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    item = await self._queue.get()
                    tg.create_task(self._run(handle, item))
        finally:
            self._serving -= 1

    @staticmethod
    async def _run(handle: Handler, item: _Pending) -> None:
        reply = await handle(item.cmd, item.origin)
        if not item.reply.done():
            item.reply.set_result(reply)


# --------------------------------------------------------------------------- over Redis


class RedisBus:
    """The bus over Redis streams (see the module docstring for the keys)."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        *,
        url: str = "",
        timeout: float = 5.0,
        heartbeat_interval: float = 1.0,
        reply_ttl: float = 60.0,
    ) -> None:
        """Use an open ``redis.asyncio.Redis`` (decode_responses=True) under ``prefix``."""
        self._r = redis
        self._prefix = prefix
        self._url = url  # only to mask it out of error text
        self._timeout = timeout
        self._heartbeat_interval = heartbeat_interval
        self._reply_ttl = reply_ttl
        self._user: str | None = None
        self._origin = origin_label()
        self.ready = asyncio.Event()  # set once serving: heartbeat written, inboxes found

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, url: str, prefix: str, *, within: float = 5.0
    ) -> AsyncIterator[RedisBus]:
        """Open a connection to ``url`` for the block; errors name the masked URL only."""
        redis = open_redis(url)
        try:
            yield cls(redis, prefix, url=url, timeout=within)
        finally:
            await redis.aclose()

    def key(self, name: str) -> str:
        """The full Redis key for ``name``."""
        return self._prefix + name

    def _fail(self, exc: BaseException) -> BusError:
        return BusError(describe_error(exc, self._url) if self._url else scrub(str(exc), ""))

    # ---- client ------------------------------------------------------------------------

    async def identity(self) -> str:
        """The Redis ACL user of this connection."""
        if self._user is None:
            try:
                self._user = await whoami(self._r)
            except Exception as exc:
                raise self._fail(exc) from None
        return self._user

    async def controller_running(self) -> bool:
        """Whether a controller's heartbeat is present."""
        try:
            return bool(await self._r.exists(self.key(HEARTBEAT_KEY)))
        except Exception as exc:
            raise self._fail(exc) from None

    async def request(
        self, name: str, args: Mapping[str, Any] | None = None, *, within: float | None = None
    ) -> Reply:
        """Send one command and wait for its reply (see the module docstring)."""
        limit = self._timeout if within is None else within
        if not await self.controller_running():
            raise NoController(
                "no controller is running (no heartbeat in Redis); start `dialer run` first"
            )
        user = await self.identity()
        ident = secrets.token_hex(8)
        inbox = self.key(INBOX_PREFIX + user)
        reply_key = self.key(f"{REPLY_PREFIX}{user}:{ident}")
        body = {"id": ident, "name": name, "args": dict(args or {}), "timeout": limit}
        body["origin"] = self._origin
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.xadd(inbox, {"c": json.dumps(body, default=str)}, maxlen=1000, approximate=True)
            pipe.xadd(self.key(DOORBELL_KEY), {"u": user}, maxlen=100, approximate=True)
            entry_id, _ = await pipe.execute()
            got = await self._r.blpop([reply_key], timeout=limit)
            if got is None:
                withdrawn = await self._r.xdel(inbox, entry_id)
        except Exception as exc:
            raise self._fail(exc) from None
        if got is None:
            if withdrawn:
                raise BusTimeout(
                    f"the controller did not take {name} within {limit:g} s; it was not run"
                )
            raise BusTimeout(
                f"the controller took {name} but did not answer within {limit:g} s; "
                "it may have run (see the audit log)"
            )
        return Reply.from_json(json.loads(got[1]))

    # ---- controller --------------------------------------------------------------------

    async def serve_forever(self, handle: Handler) -> None:
        """Beat the heartbeat, follow every supervisor's stream, answer each command."""
        async with asyncio.TaskGroup() as tg:
            beat = tg.create_task(self._heartbeat(), name="bus-heartbeat")
            try:
                await self._read_loop(handle, tg)
            finally:
                beat.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._r.delete(self.key(HEARTBEAT_KEY)))

    async def _heartbeat(self) -> None:
        value = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
        ttl_ms = int(self._heartbeat_interval * 3000)
        while True:
            try:
                await self._r.set(self.key(HEARTBEAT_KEY), value, px=ttl_ms)
                reraise_swallowed_cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus: heartbeat failed: %s", self._fail(exc))
            await asyncio.sleep(self._heartbeat_interval)

    async def _discover(self) -> tuple[str, dict[str, str]]:
        """The doorbell's last id and every existing inbox, each to be read from the start."""
        last = await self._r.xrevrange(self.key(DOORBELL_KEY), count=1)
        bell = last[0][0] if last else "0-0"
        streams: dict[str, str] = {}
        async for key in self._r.scan_iter(match=self.key(INBOX_PREFIX) + "*", count=500):
            streams[key] = "0-0"
        return bell, streams

    async def _read_loop(self, handle: Handler, tg: asyncio.TaskGroup) -> None:
        bell_key = self.key(DOORBELL_KEY)
        bell, streams = await self._discover()
        await self._r.set(
            self.key(HEARTBEAT_KEY), "starting", px=int(self._heartbeat_interval * 3000)
        )
        self.ready.set()
        delay = 0.2
        while True:
            try:
                got = await self._r.xread({bell_key: bell, **streams}, block=1000, count=100)
                reraise_swallowed_cancel()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone: keep trying; clients see no heartbeat
                log.warning("bus: read failed: %s", self._fail(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if not got:
                continue
            now_ms = await self._server_ms()
            for stream, entries in got:
                if stream == bell_key:
                    bell = entries[-1][0]
                    for _id, fields in entries:
                        streams.setdefault(self.key(INBOX_PREFIX + fields.get("u", "")), "0-0")
                    continue
                streams[stream] = entries[-1][0]
                user = stream[len(self.key(INBOX_PREFIX)) :]
                for entry_id, fields in entries:
                    if await self._claim(stream, entry_id, fields, now_ms):
                        tg.create_task(self._answer(handle, user, fields))

    async def _server_ms(self) -> int:
        sec, usec = await self._r.time()
        return int(sec) * 1000 + int(usec) // 1000

    async def _claim(self, stream: str, entry_id: str, fields: Mapping[str, str], now: int) -> bool:
        """Take the entry (exactly one taker wins the XDEL); drop it if it is stale."""
        if not await self._r.xdel(stream, entry_id):
            return False  # another controller, or the client withdrew it
        try:
            body = json.loads(fields.get("c", ""))
            sent_ms = int(entry_id.split("-", 1)[0])
            stale = now - sent_ms > float(body.get("timeout", self._timeout)) * 1000
        except (ValueError, TypeError, AttributeError):
            log.warning("bus: dropped a malformed command in %s", stream)
            return False
        if stale:
            log.info("bus: dropped %s from %s: older than its timeout", body.get("name"), stream)
        return not stale

    async def _answer(self, handle: Handler, user: str, fields: Mapping[str, str]) -> None:
        body = json.loads(fields["c"])
        args = body.get("args") if isinstance(body.get("args"), dict) else {}
        cmd = Command(str(body.get("name", "")), args, user)
        reply = await handle(cmd, str(body.get("origin", "")))
        reply_key = self.key(f"{REPLY_PREFIX}{user}:{body.get('id', '')}")
        pipe = self._r.pipeline(transaction=True)
        pipe.lpush(reply_key, json.dumps(reply.to_json(), default=str))
        pipe.expire(reply_key, int(self._reply_ttl))
        try:
            await pipe.execute()
        except Exception as exc:
            log.warning("bus: reply to %s for %s lost: %s", user, cmd.name, self._fail(exc))


def supervisor_acl_rules(user: str, prefix: str) -> list[str]:
    """ACL rules for one supervisor: their own inbox and replies, read-only live state.

    Use as ``ACL SETUSER <user> on ><password> <rules...>``; the password comes from the
    site's secret store, one per supervisor.
    """
    return [
        "resetkeys",
        "resetchannels",
        "-@all",
        f"~{prefix}{INBOX_PREFIX}{user}",
        f"~{prefix}{REPLY_PREFIX}{user}:*",
        f"%W~{prefix}{DOORBELL_KEY}",
        f"%R~{prefix}live:*",
        f"%R~{prefix}{HEARTBEAT_KEY}",
        "+xadd",
        "+xdel",
        "+blpop",
        "+exists",
        "+hgetall",
        "+xrevrange",
        "+xread",
        "+multi",
        "+exec",
        "+ping",
        "+select",
        "+acl|whoami",
    ]
