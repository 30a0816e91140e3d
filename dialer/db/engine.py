"""Engine and session factory from ``Settings.database.url``, and the migration runner.

``sqlite+aiosqlite:///dialer.db`` is the embedded default (one controller); production uses
``postgresql+psycopg://user@host/db``.  :func:`upgrade` runs the Alembic migrations shipped in
this package (``dialer db upgrade``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: How long a SQLite connection waits for the write lock before "database is locked".  With
#: lookups kept off the write lock (Database.read), the writers are the ledger writer (short
#: batches), the hopper and lead releases, each holding the lock for milliseconds; 5 s covers a
#: checkpoint or a large batch on a slow disk.  A write that still times out is retried in a
#: fresh transaction (Database.retrying), so the total wait before an error is a few times this.
#: Longer would only hide a stuck writer longer.
SQLITE_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
    if parsed.get_backend_name() == "postgresql":
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
        # A dead server must fail fast, not hang the writer for minutes.
        kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_begin_immediate(conn: Any) -> None:
    # A deferred transaction that reads, then writes after another connection committed fails
    # with "database is locked" (stale WAL snapshot) after waiting the whole busy timeout; the
    # hopper hits that under load.  Connections made with the execution option
    # ``sqlite_immediate=True`` take the write lock at BEGIN and queue on busy_timeout instead;
    # the rest stay deferred (a reader must not hold the write lock, e.g. across a PIN hash).
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN (pysqlite's own implicit BEGIN is deferred).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Any:
    """The Alembic configuration pointing at the migrations inside the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database."""
    from alembic import command

    cfg = alembic_config()

    def run(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    def read(sync_conn: Any) -> str | None:
        rev: str | None = MigrationContext.configure(sync_conn).get_current_revision()
        return rev

    async with engine.connect() as conn:
        return await conn.run_sync(read)
