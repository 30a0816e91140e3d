"""The record on its own thread and event loop.

SQLAlchemy's asyncio layer does its ORM work (building statements, flushing, loading rows) on
the event loop's thread; a ledger batch or a hopper query can hold it for tens of
milliseconds.  On the controller's loop that time lands straight on the hand-off (a FastAGI
session waiting for its agent) and on AMI event handling.  Here the database, the ledger
writer and every query run on a second loop in a second thread; the controller's loop only
hands records over (``record``) and awaits results (``call``).  Python switches threads every
few milliseconds, so a long database step no longer blocks the hand-off for its whole length.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dialer.config import Settings

T = TypeVar("T")


class DbThread:
    """A :class:`dialer.db.database.Database` and its LedgerWriter, served by a private loop."""

    def __init__(self, settings: Settings, *, migrate: bool = False) -> None:
        self.settings = settings
        self.migrate = migrate
        self.db: Any = None
        self.writer: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    async def start(self) -> None:
        """Start the thread; return once the database is open and the writer runs."""
        self._thread = threading.Thread(target=self._main, name="dialer-db", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from dialer.db.database import Database

        try:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.db = Database.from_settings(self.settings)
            if self.migrate:
                await self.db.upgrade()
            self.writer = self.db.ledger_writer()
            await self.writer.start()
        except BaseException as exc:  # reported to start(), which raises it in the caller
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.writer.stop()
            await self.db.close()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the database loop and await its result here."""
        assert self.loop is not None, "DbThread not started"
        future = asyncio.run_coroutine_threadsafe(_run(fn, *args), self.loop)
        return await asyncio.wrap_future(future)

    def record(self, record: Any) -> None:
        """Queue a ledger record (never blocks)."""
        assert self.loop is not None, "DbThread not started"
        self.loop.call_soon_threadsafe(self.writer.record, record)

    async def stop(self) -> None:
        """Write what is queued, close the database, end the thread."""
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)


async def _run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


class WriterProxy:
    """What other parts hold as "the ledger writer": ``record`` crosses to the database loop."""

    def __init__(self, dbt: DbThread) -> None:
        self._dbt = dbt

    def record(self, record: Any) -> None:
        """Queue a ledger record."""
        self._dbt.record(record)

    @property
    def dialling_allowed(self) -> bool:
        """False while the database is unreachable or the spool is being replayed."""
        return bool(self._dbt.writer.dialling_allowed)

    @property
    def written(self) -> int:
        """Records committed so far."""
        return int(self._dbt.writer.written)

    async def flush(self) -> None:
        """Wait until every record queued so far is in the database or the spool."""
        await self._dbt.call(self._dbt.writer.flush)
