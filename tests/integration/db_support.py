"""Fixtures for the database tests: a fresh, migrated database per test, on both backends."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from dialer.config import SiteSettings
from dialer.db.campaigns import create_campaign
from dialer.db.database import Database
from dialer.db.models import Lead


def fresh_pg_database(pg_url: str) -> Iterator[str]:
    """Create an empty database next to the session's one; drop it afterwards."""
    url = make_url(pg_url)
    name = f"dialer_db_{secrets.token_hex(4)}"
    admin = f"host={url.host} port={url.port or 5432} dbname=postgres user={url.username}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    yield from fresh_pg_database(pg_url)


@pytest.fixture
def pg_only_url(pg_url: str) -> Iterator[str]:
    """A URL of an empty PostgreSQL database (for tests of the two-controller guarantee)."""
    yield from fresh_pg_database(pg_url)


@pytest.fixture
async def database(db_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated Database on each backend."""
    db = Database(db_url, site=SiteSettings(), spool_path=str(tmp_path / "spool.jsonl"))
    await db.upgrade()
    try:
        yield db
    finally:
        await db.close()


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text ("2026-11-30T06:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def make_campaign(db: Database, name: str = "spring", **values: object) -> int:
    """A running campaign (all days, 00:00-24:00 so only the site floor limits)."""
    values.setdefault("status", "running")
    values.setdefault("calling_start", "00:00")
    values.setdefault("calling_end", "24:00")
    values.setdefault("calling_days", "all")
    async with db.transaction() as s:
        row = await create_campaign(s, name, **values)
        return row.id


async def add_leads(
    db: Database,
    campaign_id: int,
    count: int,
    *,
    tz: str = "Asia/Kolkata",
    start: int = 0,
    priority: int = 0,
) -> list[int]:
    """Insert ``count`` ready leads with numbers +9198765xxxxx; their ids."""
    async with db.transaction() as s:
        rows = [
            Lead(
                campaign_id=campaign_id,
                phone=f"+9198765{start + i:05d}",
                timezone=tz,
                priority=priority,
                status="ready",
                attempts=0,
                alt_phones=[],
                custom={},
            )
            for i in range(count)
        ]
        s.add_all(rows)
        await s.flush()
        return [r.id for r in rows]


class TcpProxy:
    """A loopback TCP forwarder we can cut (closing every live connection) and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (on the same port as before, once one was chosen)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and drop every connection: the database is "down"."""
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
