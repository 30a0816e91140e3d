"""SQLite under many logins: lookups never take the write lock; locked writes retry or say so.

With 500 agents logging in at once on SQLite, the inbound skills lookup (run in a write
transaction) queued for the write lock behind the ledger writer and failed with "database is
locked".  These tests hold the write lock the way a writer does and hammer the login path
(PIN check, skills, campaigns) concurrently with the ledger writer and the hopper.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

import dialer.db.engine as db_engine
from dialer.agi_scripts.inbound_store import DbInboundRecorder
from dialer.config import SiteSettings
from dialer.db.database import Database, DatabaseLocked
from dialer.db.ledger import AgentStateChanged
from dialer.db.models import Agent, AgentCampaign, Lead
from dialer.engine.store import DbStore

from .db_support import add_leads, make_campaign

AGENTS = 300  # logins in the hammer (bounded: the whole test takes seconds)
PIN = "4321"


def cheap_hash(pin: str) -> str:
    """A PIN hash in the stored format with tiny scrypt costs (the test is about locks)."""
    salt = b"contention-test!"
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=2, r=1, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt$2$1$1${b64(salt).decode()}${b64(digest).decode()}"


@pytest.fixture
async def db_path(tmp_path: Path) -> AsyncIterator[Path]:
    """A migrated SQLite file with a campaign, leads and AGENTS agents with skills."""
    path = tmp_path / "dialer.db"
    db = Database(f"sqlite+aiosqlite:///{path}", site=SiteSettings())
    await db.upgrade()
    cid = await make_campaign(db)
    await add_leads(db, cid, 50)
    async with db.transaction() as s:
        agents = [
            Agent(
                number=str(2000 + i),
                name=f"Agent {i}",
                pin_hash=cheap_hash(PIN),
                languages=["hi", "en"],
                skills=["survey"],
            )
            for i in range(AGENTS)
        ]
        s.add_all(agents)
        await s.flush()
        s.add_all(AgentCampaign(agent_id=a.id, campaign_id=cid) for a in agents)
    await db.close()
    yield path


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holds SQLite's write lock (as the ledger writer does mid-batch)."""
    con = sqlite3.connect(path, isolation_level=None, timeout=0)
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    finally:
        con.execute("ROLLBACK")
        con.close()


async def test_login_lookups_do_not_wait_for_the_write_lock(db_path: Path) -> None:
    store_db = Database(url(db_path), site=SiteSettings())  # the controller's record
    ivr_db = Database(url(db_path), site=SiteSettings())  # the IVR's reader, as in dialer run
    store = DbStore(store_db, writer=None, owner="ctl")
    recorder = DbInboundRecorder(ivr_db, writer=None, site=SiteSettings())  # type: ignore[arg-type]
    try:
        with write_lock_held(db_path):
            # While a writer holds the lock, every lookup of the login path still answers
            # (before: the skills lookup queued for the lock and failed after busy_timeout).
            async with asyncio.timeout(4.0):  # less than busy_timeout: nobody may wait for it
                checks, skills, campaigns = await asyncio.gather(
                    asyncio.gather(*(store.check_pin(str(2000 + i), PIN) for i in range(50))),
                    asyncio.gather(*(recorder.agent_skills(str(2000 + i)) for i in range(50))),
                    asyncio.gather(*(store.agent_campaigns(str(2000 + i)) for i in range(50))),
                )
        assert all(c.ok for c in checks), {c.code for c in checks}
        assert all(s == frozenset({"hi", "en", "survey"}) for s in skills)
        assert all(len(c) == 1 for c in campaigns)
    finally:
        await store_db.close()
        await ivr_db.close()


async def test_many_concurrent_logins_with_the_ledger_and_hopper_writing(
    db_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_db = Database(url(db_path), site=SiteSettings(), spool_path=str(tmp_path / "spool"))
    ivr_db = Database(url(db_path), site=SiteSettings())
    writer = store_db.ledger_writer(flush_interval=0.01, batch_size=20)
    await writer.start()
    store = DbStore(store_db, writer, owner="ctl")
    recorder = DbInboundRecorder(ivr_db, writer, SiteSettings())
    cid = (await store.running_campaigns())[0].id
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def login(number: str) -> None:
        try:
            check = await store.check_pin(number, PIN)
            assert check.ok, check
            writer.record(
                AgentStateChanged(agent_number=number, state="READY", at=datetime.now(UTC))
            )
            await recorder.agent_skills(number)
            await store.agent_campaigns(number)
        except BaseException as exc:
            errors.append(exc)

    async def hopper() -> None:
        # The engine refills its lead buffer as agents arrive: reserve, then give back.
        while not done.is_set():
            try:
                leads = await store.reserve_leads(cid, 5)
                await store.release_leads([t.lead_id for t in leads])
            except BaseException as exc:
                errors.append(exc)
                return

    hoppers = [asyncio.create_task(hopper()) for _ in range(2)]
    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(login(str(2000 + i)) for i in range(AGENTS)))
            done.set()
            await asyncio.gather(*hoppers)
            await writer.flush()
    finally:
        done.set()
        await writer.stop()
        await store_db.close()
        await ivr_db.close()
    assert not errors, errors[:3]
    assert writer.spooled == 0  # no ledger batch was refused either
    assert "database is locked" not in caplog.text
    check = sqlite3.connect(db_path)
    try:
        rows = check.execute("SELECT count(*) FROM agent_state_log").fetchone()[0]
        reserved = check.execute(
            "SELECT count(*) FROM leads WHERE inflight_owner IS NOT NULL"
        ).fetchone()[0]
    finally:
        check.close()
    assert rows == AGENTS and reserved == 0


class RetrySeen(logging.Handler):
    """Sets an event when the database logs that a locked write is being tried again."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "trying again" in record.getMessage():
            self.seen.set()


async def test_a_locked_write_is_retried_then_succeeds(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_MS", 100)
    db = Database(url(db_path), site=SiteSettings())
    handler = RetrySeen()
    logging.getLogger("dialer.db").addHandler(handler)
    try:
        cid = (await db.running_campaigns())[0].id
        with write_lock_held(db_path):
            task = asyncio.create_task(db.reserve_leads(cid, 3, datetime.now(UTC), "ctl"))
            async with asyncio.timeout(10):
                await handler.seen.wait()  # the first try timed out on the lock
        async with asyncio.timeout(10):
            leads = await task  # the lock is free now: a later try gets it
        assert len(leads) == 3
    finally:
        logging.getLogger("dialer.db").removeHandler(handler)
        await db.close()


async def test_a_write_that_never_gets_the_lock_fails_clearly_and_writes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    db = Database(url(db_path), site=SiteSettings())
    try:
        cid = (await db.running_campaigns())[0].id
        with write_lock_held(db_path), pytest.raises(DatabaseLocked) as info:
            async with asyncio.timeout(10):
                await db.reserve_leads(cid, 3, datetime.now(UTC), "ctl")
        text = str(info.value)
        assert "reserve leads of campaign" in text and "PostgreSQL" in text, text
        assert info.value.attempts > 1  # it was tried again before giving up
        async with db.read() as s:
            from sqlalchemy import func, select

            held = await s.scalar(
                select(func.count()).select_from(Lead).where(Lead.inflight_owner.is_not(None))
            )
        assert held == 0
    finally:
        await db.close()
