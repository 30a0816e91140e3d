"""``dialer bench db``: lead import time, hopper picks/s and ledger writes/s, with baselines.

Runs in a scratch database it creates and drops: a new PostgreSQL database on the server of
``database.url`` (or ``--url``), or a temporary SQLite file.  Every phase is bounded in count
and time.  Figures are printed with a baseline measured in the same run:

* import: the whole ``leads import`` of N generated rows (Devanagari names, hierarchy, 1 %
  invalid numbers, 1 % duplicates) against reading + validating the same file without the DB;
* hopper: leads reserved per second by two controllers (4 workers each, 10 leads a call, SKIP
  LOCKED), checked for duplicates, against the same ``SELECT ... LIMIT 10`` in the same order
  without locking, marking or committing, at the same concurrency;
* ledger: records per second through the batched LedgerWriter (start, update, end with the lead
  update, agent state), against one transaction per record.
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import make_url

from dialer.db.database import Database
from dialer.db.ledger import (
    AgentStateChanged,
    CallEnded,
    CallStarted,
    CallUpdate,
    LedgerRecord,
    LedgerWriter,
    apply_record,
)
from dialer.db.models import Lead
from dialer.domain.results import CallResult

if TYPE_CHECKING:
    from dialer.config import Settings

NAMES = ["राम कुमार", "सीता देवी", "Anil Sharma", "प्रिया सिंह", "Mohammed Iqbal", "गीता यादव"]


@asynccontextmanager
async def scratch_url(base_url: str) -> AsyncIterator[str]:
    """A fresh empty database next to ``base_url``; dropped afterwards."""
    url = make_url(base_url)
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="dialer-bench-") as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return
    import psycopg

    name = f"dialer_bench_{secrets.token_hex(4)}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_leads_csv(path: Path, rows: int, seed: int = 7) -> None:
    """A realistic import file: Indian mobiles, Devanagari names, hierarchy, a few bad rows."""
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Mobile", "Name", "Language", "District", "Mandal", "SK Code", "Booth", "Ward"])
        for i in range(rows):
            number = f"9{8_000_000_00 + i:09d}"
            if i % 100 == 37:
                number = "12345"  # invalid
            elif i % 100 == 73 and i > 0:
                number = f"9{8_000_000_00 + i - 1:09d}"  # duplicate of the previous row
            w.writerow(
                [
                    number,
                    rnd.choice(NAMES),
                    rnd.choice(["hi", "en"]),
                    "D01",
                    f"M{i % 40:02d}",
                    f"SK{i % 400:03d}",
                    f"B{i % 4000:04d}",
                    f"w{i % 7}",
                ]
            )


async def bench_import(db: Database, tmp: Path, rows: int) -> tuple[list[str], int]:
    """Import N rows; baseline: read + validate only."""
    from dialer.db.campaigns import create_campaign
    from dialer.db.leads_io import PhoneNormaliser, _check_rows, import_leads, read_table

    path = tmp / "leads.csv"
    write_leads_csv(path, rows)
    async with db.transaction() as s:
        cid = (await create_campaign(s, "bench", status="running", calling_days="all")).id
    t0 = time.perf_counter()
    header, body = read_table(path)
    _check_rows(header, body, {}, PhoneNormaliser("IN", db.site_timezone), [])
    baseline = time.perf_counter() - t0
    cpu0 = time.process_time()
    summary = await import_leads(db, cid, path, default_region="IN")
    cpu = time.process_time() - cpu0
    lines = [
        f"leads import: {summary.rows} rows in {summary.seconds:.2f} s "
        f"({summary.rows / summary.seconds:,.0f} rows/s; {summary.imported} imported, "
        f"{summary.rejected} rejected; {cpu:.2f} s CPU in this process) "
        "-- target < 30 s for 100,000",
        f"  baseline read+validate only: {baseline:.2f} s; import/baseline = "
        f"{summary.seconds / baseline:.2f}x; insert {summary.timings.get('insert', 0):.2f} s",
    ]
    return lines, cid


async def bench_hopper(url: str, db: Database, cid: int, seconds: float) -> list[str]:
    """Two controllers x 4 workers reserving 10 at a time; baseline: unlocked SELECT."""
    now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 11:30 in India: inside the window
    controllers = [Database(url, pool_size=4) for _ in range(2)]
    picked: list[int] = []
    calls = 0

    async def worker(ctrl: Database, owner: str, deadline: float) -> None:
        nonlocal calls
        while time.perf_counter() < deadline:
            got = await ctrl.reserve_leads(cid, 10, now, owner)
            calls += 1
            if not got:
                return
            picked.extend(g.lead_id for g in got)

    async def plain(ctrl: Database, deadline: float) -> int:
        n = 0
        query = (
            select(Lead.id)
            .where(Lead.campaign_id == cid, Lead.status == "ready")
            .order_by(Lead.priority.desc(), Lead.next_dial_after.asc().nulls_first(), Lead.id)
            .limit(10)
        )
        while time.perf_counter() < deadline:
            async with ctrl.sessionmaker() as s:
                n += len((await s.scalars(query)).all())
        return n

    try:
        t0 = time.perf_counter()
        deadline = t0 + seconds
        await asyncio.gather(
            *(worker(c, f"ctl{i}", deadline) for i, c in enumerate(controllers) for _ in range(4))
        )
        elapsed = time.perf_counter() - t0
        if db.dialect == "sqlite":
            base_n, base_t = 0, 1.0
        else:
            b0 = time.perf_counter()
            counts = await asyncio.gather(
                *(plain(c, b0 + seconds / 2) for c in controllers for _ in range(4))
            )
            base_n, base_t = sum(counts), time.perf_counter() - b0
    finally:
        for c in controllers:
            await c.close()
    dup = len(picked) - len(set(picked))
    rate = len(picked) / elapsed
    lines = [
        f"hopper: {rate:,.0f} leads picked/s ({calls / elapsed:,.0f} reserve calls/s of 10, "
        f"2 controllers x 4 workers, {len(picked)} leads in {elapsed:.2f} s, "
        f"{dup} handed out twice)"
    ]
    if base_n:
        lines.append(
            f"  baseline unlocked SELECT LIMIT 10: {base_n / base_t:,.0f} rows/s; "
            f"hopper/baseline = {rate / (base_n / base_t):.2f}"
        )
    return lines


def _call(i: int, lead_id: int, cid: int, t: datetime) -> list[LedgerRecord]:
    cid_s = f"bench-{i}"
    return [
        CallStarted(
            call_id=cid_s,
            at=t,
            campaign_id=cid,
            lead_id=lead_id,
            phone="+91",
            owner="bench",
            pacing_decision={"n": 2},
        ),
        CallUpdate(call_id=cid_s, answered_at=t, amd_status="HUMAN"),
        CallEnded(
            call_id=cid_s,
            at=t + timedelta(seconds=30),
            result=CallResult.NO_ANSWER,
            hangup_cause=19,
            ring_seconds=25.0,
        ),
        AgentStateChanged(agent_number="1001", state="READY", at=t),
    ]


async def bench_ledger(db: Database, cid: int, seconds: float, tmp: Path) -> list[str]:
    """Records/s through the LedgerWriter; baseline: one transaction per record."""
    async with db.sessionmaker() as s:
        lead_ids = list(
            (await s.scalars(select(Lead.id).where(Lead.campaign_id == cid).limit(50_000))).all()
        )
    t = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    # Baseline first, on its own leads, for half the time.
    n_base = 0
    b0 = time.perf_counter()
    i = 0
    while time.perf_counter() - b0 < seconds / 2 and i < len(lead_ids) // 2:
        for rec in _call(i, lead_ids[i], cid, t):
            async with db.transaction() as s:
                await apply_record(db, s, rec)
            n_base += 1
        i += 1
    base_rate = n_base / (time.perf_counter() - b0)
    writer = LedgerWriter(db, tmp / "bench.spool", batch_size=500, flush_interval=0.05)
    await writer.start()
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds and i < len(lead_ids):
        for rec in _call(i, lead_ids[i], cid, t):
            writer.record(rec)
            n += 1
        i += 1
        if writer.pending > 1000:
            await writer.flush()  # back-pressure: measure what is written, not what is queued
    await writer.flush()
    elapsed = time.perf_counter() - t0
    await writer.stop()
    rate = n / elapsed
    return [
        f"ledger: {rate:,.0f} records written/s ({n} records = {n // 4} calls in {elapsed:.2f} s,"
        f" batch 500, spooled {writer.spooled})",
        f"  baseline one transaction per record: {base_rate:,.0f} records/s; "
        f"writer/baseline = {rate / base_rate:.1f}x",
    ]


def run_bench(settings: Settings, url: str | None, rows: int, seconds: float) -> list[str]:
    """Run the three phases in a scratch database; the lines to print."""

    async def main() -> list[str]:
        base = url or settings.database.url.get_secret_value()
        async with scratch_url(base) as scratch:
            db = Database(scratch, site=settings.site, pool_size=8)
            try:
                await db.upgrade()
                with tempfile.TemporaryDirectory(prefix="dialer-bench-") as tmp_name:
                    tmp = Path(tmp_name)
                    backend = make_url(scratch).get_backend_name()
                    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                    out = [
                        f"dialer bench db on {backend} (scratch database, dropped after; "
                        f"{os.cpu_count()} CPUs, load average {load:.1f} at start)"
                    ]
                    lines, cid = await bench_import(db, tmp, rows)
                    out += lines
                    out += await bench_hopper(scratch, db, cid, seconds)
                    out += await bench_ledger(db, cid, seconds, tmp)
                    return out
            finally:
                await db.close()

    return asyncio.run(main())
