"""Do-not-call lists: global (``campaign_id`` NULL) and per campaign.

``import_dnc`` takes the office's own list or a national registry extract (India's NCPR/DND
extracts are plain lists of 10-digit numbers, sometimes with more columns): the first column,
or a named one, is read line by line, normalised to E.164 with the default region, and
inserted in chunks, skipping numbers already listed.  Large extracts are streamed, not loaded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.campaigns import get_campaign
from dialer.db.database import Database
from dialer.db.leads_io import PhoneNormaliser
from dialer.db.models import Dnc, utcnow

CHUNK = 5000


class DncError(ValueError):
    """A number or file that cannot be used."""


@dataclass(frozen=True, slots=True)
class DncEntry:
    """One listing of a number."""

    phone: str
    scope: str  # "global" or the campaign name
    source: str
    added_at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class DncImportResult:
    """What ``dnc import`` did."""

    lines: int
    added: int
    already: int
    invalid: int


def _insert_ignore(session: AsyncSession, rows: list[dict[str, object]]) -> Any:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(Dnc).values(rows).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(Dnc).values(rows).on_conflict_do_nothing()


async def _campaign_id(session: AsyncSession, campaign: str | None) -> int | None:
    if not campaign:
        return None
    try:
        return (await get_campaign(session, campaign)).id
    except ValueError as exc:
        raise DncError(str(exc)) from None


def _normalise(db: Database, numbers: Iterable[str], region: str | None) -> list[str]:
    norm = PhoneNormaliser(region or db.country, db.site_timezone)
    out = []
    for raw in numbers:
        phone, why = norm.e164(raw)
        if phone is None:
            raise DncError(f"{raw!r}: {why}")
        out.append(phone)
    return out


async def add_numbers(
    db: Database,
    numbers: Iterable[str],
    *,
    campaign: str | None = None,
    source: str = "manual",
    note: str = "",
    region: str | None = None,
) -> int:
    """List numbers (global, or for one campaign); returns how many were new."""
    phones = _normalise(db, numbers, region)
    async with db.transaction() as s:
        cid = await _campaign_id(s, campaign)
        before = await _count(s, phones, cid)
        now = utcnow()
        rows: list[dict[str, object]] = [
            {"phone": p, "campaign_id": cid, "source": source, "note": note, "added_at": now}
            for p in dict.fromkeys(phones)
        ]
        if rows:
            await s.execute(_insert_ignore(s, rows))
        return await _count(s, phones, cid) - before


async def _count(session: AsyncSession, phones: list[str], cid: int | None) -> int:
    scope = Dnc.campaign_id.is_(None) if cid is None else Dnc.campaign_id == cid
    rows = await session.scalars(select(Dnc.phone).where(Dnc.phone.in_(phones), scope))
    return len(set(rows.all()))


async def remove_numbers(
    db: Database, numbers: Iterable[str], *, campaign: str | None = None, region: str | None = None
) -> int:
    """Unlist numbers from the global list (or one campaign's); how many were removed."""
    phones = _normalise(db, numbers, region)
    async with db.transaction() as s:
        cid = await _campaign_id(s, campaign)
        scope = Dnc.campaign_id.is_(None) if cid is None else Dnc.campaign_id == cid
        result = await s.execute(delete(Dnc).where(Dnc.phone.in_(phones), scope))
        return int(getattr(result, "rowcount", 0) or 0)


async def check_number(
    db: Database, number: str, *, campaign: str | None = None, region: str | None = None
) -> list[DncEntry]:
    """Every listing that stops this number being called (for ``campaign``, or anywhere)."""
    (phone,) = _normalise(db, [number], region)
    from dialer.db.models import Campaign

    async with db.sessionmaker() as s:
        query = select(Dnc, Campaign.name).outerjoin(Campaign).where(Dnc.phone == phone)
        if campaign:
            cid = await _campaign_id(s, campaign)
            query = query.where((Dnc.campaign_id.is_(None)) | (Dnc.campaign_id == cid))
        rows = (await s.execute(query.order_by(Dnc.added_at))).all()
    return [DncEntry(d.phone, name or "global", d.source, d.added_at, d.note) for d, name in rows]


def _numbers_in(path: Path, column: str | None) -> Iterator[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(fh, dialect)
        index = 0
        for n, cells in enumerate(reader):
            if n == 0:
                names = [c.strip().lower() for c in cells]
                if column is not None:
                    if column.lower() not in names:
                        raise DncError(f"{path}: no column {column!r} in {cells}")
                    index = names.index(column.lower())
                    continue
                if cells and not any(ch.isdigit() for ch in cells[0]):
                    continue  # a header line
            if len(cells) > index and cells[index].strip():
                yield cells[index]


async def import_dnc(
    db: Database,
    path: Path,
    *,
    campaign: str | None = None,
    source: str = "import",
    column: str | None = None,
    region: str | None = None,
) -> DncImportResult:
    """Stream a list of numbers into the DNC list; invalid lines are counted, not fatal."""
    norm = PhoneNormaliser(region or db.country, db.site_timezone)
    lines = added = invalid = 0
    try:
        async with db.transaction() as s:
            cid = await _campaign_id(s, campaign)
            now = utcnow()
            chunk: list[str] = []

            async def flush() -> int:
                phones = list(dict.fromkeys(chunk))
                before = await _count(s, phones, cid)
                rows: list[dict[str, object]] = [
                    {"phone": p, "campaign_id": cid, "source": source, "note": "", "added_at": now}
                    for p in phones
                ]
                await s.execute(_insert_ignore(s, rows))
                chunk.clear()
                return await _count(s, phones, cid) - before

            for raw in _numbers_in(path, column):
                lines += 1
                phone, _ = norm.e164(raw)
                if phone is None:
                    invalid += 1
                    continue
                chunk.append(phone)
                if len(chunk) >= CHUNK:
                    added += await flush()
            if chunk:
                added += await flush()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DncError(f"{path}: cannot read: {exc}") from None
    return DncImportResult(lines, added, lines - invalid - added, invalid)
