"""Live state of the floor: what the engine publishes after each transition, what the CLI reads.

The engine is the only writer.  After a transition it calls the publisher's *synchronous*
methods (they never block and never await: the engine's transitions must not); a background
task (:meth:`RedisLive.run`) pushes the pending changes to Redis in one transaction, newest
value per key, so a burst of transitions costs one round trip.  The CLI and the wallboard read
a :class:`LiveSnapshot`.

What the engine puts in each mapping (plain JSON values; every field optional except where
said; times are Unix epoch seconds, because the CLI may run on another machine):

* ``agent(agent_id, data)``: ``state`` (READY, PAUSED, RESERVED, TALKING, WRAPUP, ...; required),
  ``since`` (when the agent entered that state), ``name``, ``campaign`` (or queue the agent
  serves), ``call`` (current call id), ``reason`` (pause reason code), ``seat``, ``channel``,
  ``login_at``, ``work`` (``inbound_first``, ``outbound_first``, ``inbound_only`` or
  ``outbound_only``: ``queue assign``).  ``None`` removes the agent (logged out and forgotten).
* ``call(call_id, data)``: ``state`` (ringing, waiting, talking; required), ``since``,
  ``campaign`` (or queue), ``direction`` (out/in), ``agent``, ``lead``, ``number`` (masked by the
  engine if it wishes).  ``None`` means the call is gone.
* ``counters(campaign, data)``: replaces the campaign's whole row: ``name``, ``status``,
  ``mode``, ``target_abandon`` (fraction), ``dials``, ``answers`` (live answered), ``machines``,
  ``connects``, ``abandons``, ``abandon_rate`` (today, fraction), ``abandon_rate_30d``,
  ``occupancy`` (fraction), ``pace`` (calls launched in the last minute), ``kind``
  (``campaign`` or ``queue``), ``paused`` (bool), and ``decision``: the pacer's last decision
  ``{"at", "launch", "ready", "ringing", "waiting", "note"}``.
* ``event(data)``: anything worth a line on the wallboard (``at`` is added if missing), e.g.
  ``{"kind": "abandon", "call": ..., "campaign": ...}``.  Kept in a capped stream.
* Clock: ``since``/``at`` values are on the engine's clock, which may be monotonic.  The
  publisher records the offset between that clock and Unix time with every write, taken from
  ``clock`` if given, else from the ``at`` field of counters rows (the engine puts its clock
  there), else zero; readers in another process use :meth:`LiveSnapshot.engine_now`.
* ``reset()``: forget everything; the controller calls it when it starts, then publishes what
  it knows (agents, calls, today's counters from the ledger), so no stale state survives a
  restart.  The snapshot's ``generation`` changes at every reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from dialer.live.connection import reraise_swallowed_cancel

log = logging.getLogger(__name__)

Data = Mapping[str, Any]
_EMPTY: Data = MappingProxyType({})

AGENTS_KEY = "live:agents"
CALLS_KEY = "live:calls"
COUNTERS_KEY = "live:counters"
EVENTS_KEY = "live:events"
META_KEY = "live:meta"

EVENTS_MAXLEN = 5000  # the wallboard shows the last few; a day's audit lives in the database
RECENT_EVENTS = 20
_MAX_PENDING_EVENTS = 10000  # while Redis is down, keep at most this many events in memory


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """Everything live at one moment: agents, calls in flight, per-campaign counters."""

    agents: Mapping[str, Data] = field(default_factory=lambda: _EMPTY)
    calls: Mapping[str, Data] = field(default_factory=lambda: _EMPTY)
    counters: Mapping[str, Data] = field(default_factory=lambda: _EMPTY)
    events: tuple[Data, ...] = ()  # the most recent events, oldest first
    generation: str = ""  # changes at every reset (controller start)
    updated_at: float | None = None  # when the publisher last wrote (Unix time)
    clock_offset: float = 0.0  # the engine's clock minus Unix time, at the last write

    def engine_now(self, wall: float | None = None) -> float:
        """Now on the engine's clock (what ``since`` fields are measured on)."""
        return (time.time() if wall is None else wall) + self.clock_offset


class LivePublisher(Protocol):
    """What the engine calls after transitions; none of these block."""

    def agent(self, agent_id: str, data: Data | None) -> None:
        """Set (or with ``None`` remove) one agent's live row."""

    def call(self, call_id: str, data: Data | None) -> None:
        """Set one call in flight; ``None`` means the call is gone."""

    def counters(self, campaign: str, data: Data) -> None:
        """Replace one campaign's (or queue's) counters."""

    def event(self, data: Data) -> None:
        """Append one event to the stream the wallboard follows."""

    def reset(self) -> None:
        """Forget all live state (controller start); a new generation begins."""

    async def flush(self) -> None:
        """Write everything pending now (no-op in process)."""


class LiveReader(Protocol):
    """What the CLI and the wallboard read."""

    async def snapshot(self) -> LiveSnapshot:
        """All live state at one moment."""

    def follow(self, *, after: str = "$", block_ms: int = 1000) -> AsyncIterator[Data]:
        """Events as they are published: from now on, or (``after="0"``) the kept ones first."""


def _encode(data: Data) -> str:
    return json.dumps(dict(data), default=str, separators=(",", ":"), ensure_ascii=False)


def _decode(raw: str | bytes) -> Data:
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return _EMPTY
    return MappingProxyType(value) if isinstance(value, dict) else _EMPTY


def _stamped(data: Data) -> dict[str, Any]:
    out = dict(data)
    out.setdefault("at", time.time())
    return out


class MemoryLive:
    """Live state in this process (the demo, tests): publisher and reader in one."""

    def __init__(
        self, *, recent: int = RECENT_EVENTS, clock: Callable[[], float] | None = None
    ) -> None:
        """An empty floor keeping the last ``recent`` events; ``clock``: the engine's clock."""
        self.clock = clock
        self._offset = 0.0
        self._agents: dict[str, Data] = {}
        self._calls: dict[str, Data] = {}
        self._counters: dict[str, Data] = {}
        self._events: deque[Data] = deque(maxlen=recent)
        self._generation = secrets.token_hex(4)
        self._updated_at: float | None = None
        self._followers: list[asyncio.Queue[Data]] = []

    def agent(self, agent_id: str, data: Data | None) -> None:
        """Set (or with ``None`` remove) one agent's live row."""
        _put(self._agents, str(agent_id), data)
        self._touch()

    def call(self, call_id: str, data: Data | None) -> None:
        """Set one call in flight; ``None`` means the call is gone."""
        _put(self._calls, str(call_id), data)
        self._touch()

    def counters(self, campaign: str, data: Data) -> None:
        """Replace one campaign's (or queue's) counters."""
        _put(self._counters, str(campaign), data)
        self._offset = _offset(self.clock, data, self._offset)
        self._touch()

    def event(self, data: Data) -> None:
        """Append one event; followers get it at once."""
        stamped = MappingProxyType(_stamped(data))
        self._events.append(stamped)
        for queue in self._followers:
            queue.put_nowait(stamped)
        self._touch()

    def reset(self) -> None:
        """Forget all live state; a new generation begins."""
        self._agents.clear()
        self._calls.clear()
        self._counters.clear()
        self._events.clear()
        self._generation = secrets.token_hex(4)
        self._touch()

    async def flush(self) -> None:
        """Nothing is pending in process."""

    async def snapshot(self) -> LiveSnapshot:
        """A copy of the live state now."""
        return LiveSnapshot(
            agents=MappingProxyType(dict(self._agents)),
            calls=MappingProxyType(dict(self._calls)),
            counters=MappingProxyType(dict(self._counters)),
            events=tuple(self._events),
            generation=self._generation,
            updated_at=self._updated_at,
            clock_offset=_offset(self.clock, _EMPTY, self._offset),
        )

    async def follow(self, *, after: str = "$", block_ms: int = 1000) -> AsyncIterator[Data]:
        """Events published from now on (``after`` other than ``$``: the kept ones first)."""
        queue: asyncio.Queue[Data] = asyncio.Queue()
        if after != "$":
            for past in self._events:
                queue.put_nowait(past)
        self._followers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.remove(queue)

    def _touch(self) -> None:
        self._updated_at = time.time()


def _offset(clock: Callable[[], float] | None, data: Data, previous: float) -> float:
    """Engine clock minus Unix time: from ``clock``, else a counters row's ``at``."""
    if clock is not None:
        return clock() - time.time()
    at = data.get("at")
    if isinstance(at, int | float) and not isinstance(at, bool):
        return float(at) - time.time()
    return previous


def _put(table: dict[str, Data], key: str, data: Data | None) -> None:
    if data is None:
        table.pop(key, None)
    else:
        table[key] = MappingProxyType(dict(data))


class RedisLive:
    """Live state in Redis under ``prefix``: hashes of JSON rows plus a capped event stream.

    Layout: ``<prefix>live:agents`` / ``live:calls`` / ``live:counters`` (hash: id -> JSON),
    ``<prefix>live:events`` (stream, field ``d`` = JSON, MAXLEN ~5000) and ``<prefix>live:meta``
    (hash: generation, updated_at).  The same object publishes (controller) and reads (CLI).
    """

    def __init__(
        self,
        redis: Any,
        prefix: str,
        *,
        recent: int = RECENT_EVENTS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Use an open ``redis.asyncio.Redis`` (decode_responses=True) and a key prefix."""
        self.clock = clock  # the engine's clock, if known (see the module docstring)
        self._offset = 0.0
        self._r = redis
        self._prefix = prefix
        self._recent = recent
        self._pending: dict[tuple[str, str], Data | None] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=_MAX_PENDING_EVENTS)
        self._reset_pending = False
        self._generation = ""
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()

    def key(self, name: str) -> str:
        """The full Redis key for one of the names above."""
        return self._prefix + name

    # ---- publisher (controller side) ---------------------------------------------------

    def agent(self, agent_id: str, data: Data | None) -> None:
        """Queue one agent's row (``None``: remove it)."""
        self._queue(AGENTS_KEY, str(agent_id), data)

    def call(self, call_id: str, data: Data | None) -> None:
        """Queue one call's row (``None``: the call is gone)."""
        self._queue(CALLS_KEY, str(call_id), data)

    def counters(self, campaign: str, data: Data) -> None:
        """Queue one campaign's counters."""
        self._offset = _offset(self.clock, data, self._offset)
        self._queue(COUNTERS_KEY, str(campaign), data)

    def event(self, data: Data) -> None:
        """Queue one event for the stream."""
        self._events.append(_stamped(data))
        self._dirty.set()

    def reset(self) -> None:
        """Forget everything, here and (at the next flush) in Redis."""
        self._pending.clear()
        self._events.clear()
        self._reset_pending = True
        self._generation = secrets.token_hex(4)
        self._dirty.set()

    def _queue(self, table: str, ident: str, data: Data | None) -> None:
        self._pending[(table, ident)] = None if data is None else dict(data)
        self._dirty.set()

    async def flush(self) -> None:
        """Write everything pending in one MULTI/EXEC; on error it stays pending."""
        async with self._lock:
            if not (self._pending or self._events or self._reset_pending):
                return
            pending, self._pending = self._pending, {}
            events = list(self._events)
            self._events.clear()
            reset = self._reset_pending
            self._reset_pending = False
            try:
                await self._write(pending, events, reset)
            except BaseException:
                # Put it back under anything queued meanwhile (newer values win).
                pending.update(self._pending)
                self._pending = pending
                self._events.extendleft(reversed(events))
                self._reset_pending = self._reset_pending or reset
                raise

    async def _write(
        self, pending: dict[tuple[str, str], Data | None], events: list[dict[str, Any]], reset: bool
    ) -> None:
        pipe = self._r.pipeline(transaction=True)
        if reset:
            pipe.delete(
                self.key(AGENTS_KEY),
                self.key(CALLS_KEY),
                self.key(COUNTERS_KEY),
                self.key(EVENTS_KEY),
            )
            pipe.hset(self.key(META_KEY), "generation", self._generation)
        sets: dict[str, dict[str, str]] = {}
        dels: dict[str, list[str]] = {}
        for (table, ident), data in pending.items():
            if data is None:
                dels.setdefault(table, []).append(ident)
            else:
                sets.setdefault(table, {})[ident] = _encode(data)
        for table, idents in dels.items():
            pipe.hdel(self.key(table), *idents)
        for table, mapping in sets.items():
            pipe.hset(self.key(table), mapping=mapping)
        for ev in events:
            pipe.xadd(
                self.key(EVENTS_KEY), {"d": _encode(ev)}, maxlen=EVENTS_MAXLEN, approximate=True
            )
        offset = _offset(self.clock, _EMPTY, self._offset)
        pipe.hset(
            self.key(META_KEY),
            mapping={"updated_at": repr(time.time()), "clock_offset": repr(offset)},
        )
        await pipe.execute()

    async def run(self, *, retry_initial: float = 0.2, retry_max: float = 5.0) -> None:
        """Flush whenever something is pending, until cancelled; retry with backoff on errors."""
        delay = retry_initial
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.flush()
                reraise_swallowed_cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: keep state pending, try again later
                log.warning("live state: redis write failed (%s); retrying", type(exc).__name__)
                self._dirty.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry_max)
            else:
                delay = retry_initial

    # ---- reader (CLI side) -------------------------------------------------------------

    async def snapshot(self) -> LiveSnapshot:
        """Read all live state in one transaction."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(self.key(AGENTS_KEY))
        pipe.hgetall(self.key(CALLS_KEY))
        pipe.hgetall(self.key(COUNTERS_KEY))
        pipe.xrevrange(self.key(EVENTS_KEY), count=self._recent)
        pipe.hgetall(self.key(META_KEY))
        agents, calls, counters, events, meta = await pipe.execute()
        updated = meta.get("updated_at")
        return LiveSnapshot(
            agents=_table(agents),
            calls=_table(calls),
            counters=_table(counters),
            events=tuple(_decode(fields.get("d", "")) for _id, fields in reversed(events)),
            generation=meta.get("generation", ""),
            updated_at=float(updated) if updated else None,
            clock_offset=float(meta.get("clock_offset") or 0.0),
        )

    async def follow(self, *, after: str = "$", block_ms: int = 1000) -> AsyncIterator[Data]:
        """Events added to the stream after the id ``after`` (``$``: from now on; XREAD BLOCK)."""
        last = after
        while True:
            got = await self._r.xread({self.key(EVENTS_KEY): last}, block=block_ms, count=100)
            reraise_swallowed_cancel()
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    last = entry_id
                    yield _decode(fields.get("d", ""))


def _table(raw: Mapping[str, str]) -> Mapping[str, Data]:
    return MappingProxyType({k: _decode(v) for k, v in sorted(raw.items())})


@contextlib.asynccontextmanager
async def redis_live(redis: Any, prefix: str) -> AsyncIterator[RedisLive]:
    """A :class:`RedisLive` whose background flusher runs for the block; flushed at the end."""
    live = RedisLive(redis, prefix)
    task = asyncio.create_task(live.run(), name="live-state-flush")
    try:
        yield live
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await live.flush()
