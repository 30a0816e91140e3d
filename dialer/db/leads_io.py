"""Lead import and export (``dialer leads import|export``).

Import reads the whole file first (UTF-8, BOM tolerated, delimiter sniffed), so a file that
cannot be read changes nothing; then each row is checked:

* the phone is parsed and validated with ``phonenumbers`` (``default_region`` for national
  numbers) and stored as E.164; alternates likewise (invalid alternates are dropped);
* duplicates within the file (first one wins), numbers already in the campaign and numbers on
  the global or the campaign's DNC list are rejected;
* the time zone is the row's (validated) or derived from the number (the site's zone for
  numbers of the site's country);
* all good rows are inserted in one transaction, and every rejected row goes to a report next
  to the input (``<name>.rejected.csv``: row, reason, phone), where ``row`` is the row number
  as a spreadsheet shows it (the header is row 1).

Names and every other text are stored exactly as given (Devanagari included).  Export writes
CSV and escapes cells that a spreadsheet would run as a formula (starting with ``= + - @``,
tab or CR) with a leading ``'``; import removes that escape again, so export -> import
round-trips.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy import insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.campaigns import get_campaign
from dialer.db.database import Database
from dialer.db.models import Dnc, Lead, LeadList, utcnow
from dialer.domain.dialability import DialabilityError, zone

#: Lead fields a column can map to (besides ``custom:<key>`` and ``ignore``).
LEAD_FIELDS = (
    "phone",
    "alt_phones",
    "name",
    "language",
    "timezone",
    "priority",
    "district_code",
    "district_name",
    "mandal_code",
    "mandal_name",
    "shakti_kendra_code",
    "shakti_kendra_name",
    "booth_code",
    "booth_name",
)

#: Header spellings recognised without --map (lower case, spaces/dashes as underscores).
ALIASES = {
    "mobile": "phone",
    "mobile_no": "phone",
    "mobile_number": "phone",
    "phone_number": "phone",
    "number": "phone",
    "msisdn": "phone",
    "alternate": "alt_phones",
    "alternates": "alt_phones",
    "alt_phone": "alt_phones",
    "alternate_phones": "alt_phones",
    "full_name": "name",
    "lang": "language",
    "tz": "timezone",
    "time_zone": "timezone",
    "sk_code": "shakti_kendra_code",
    "sk_name": "shakti_kendra_name",
    "shaktikendra_code": "shakti_kendra_code",
    "shaktikendra_name": "shakti_kendra_name",
    # A bare level name is the name of the unit, except booths, which go by number.
    "district": "district_name",
    "mandal": "mandal_name",
    "shakti_kendra": "shakti_kendra_name",
    "booth": "booth_code",
    "booth_no": "booth_code",
    "booth_number": "booth_code",
}

#: Columns of our own export that are state, not input: ignored on import.
EXPORT_ONLY = frozenset(
    {"id", "status", "attempts", "last_result", "last_called_at", "next_dial_after"}
)

#: Zone names ``phonenumbers`` still uses that have a newer canonical name.
ZONE_ALIASES = {"Asia/Calcutta": "Asia/Kolkata", "Asia/Katmandu": "Asia/Kathmandu"}

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INSERT_CHUNK = 2000
ANALYZE_AFTER = 1000
DNC_CHUNK = 1000


class LeadImportError(Exception):
    """The file cannot be imported at all (unreadable, no phone column, bad mapping)."""


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What ``leads import`` did."""

    rows: int
    imported: int
    rejected: int
    reasons: Mapping[str, int]
    report: Path | None
    list_id: int | None
    seconds: float
    timings: Mapping[str, float] = field(default_factory=dict)


def _norm_header(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["Mobile No=phone", "Ward=custom:ward"]`` -> {column: field}."""
    mapping: dict[str, str] = {}
    for item in items:
        col, sep, target = item.partition("=")
        target = target.strip()
        if not sep or not col.strip() or not target:
            raise LeadImportError(f"--map {item!r}: use COLUMN=FIELD")
        if target not in LEAD_FIELDS and target != "ignore" and not target.startswith("custom:"):
            raise LeadImportError(
                f"--map {item!r}: unknown field {target!r} "
                f"(fields: {', '.join(LEAD_FIELDS)}, custom:<key>, ignore)"
            )
        mapping[col.strip()] = target
    return mapping


def _resolve_columns(header: Sequence[str], mapping: Mapping[str, str]) -> list[str]:
    """The target field of each column, in order."""
    by_norm = {_norm_header(k): v for k, v in mapping.items()}
    targets: list[str] = []
    for col in header:
        if col in mapping:
            targets.append(mapping[col])
            continue
        key = _norm_header(col)
        if key in by_norm:
            targets.append(by_norm[key])
        elif key in LEAD_FIELDS:
            targets.append(key)
        elif key in ALIASES:
            targets.append(ALIASES[key])
        elif key == "custom":
            targets.append("custom_json")  # our own export's custom column
        elif key in EXPORT_ONLY:
            targets.append("ignore")
        elif key:
            targets.append(f"custom:{col.strip()}")
        else:
            targets.append("ignore")
    if "phone" not in targets:
        raise LeadImportError(
            f"no phone column among {list(header)}; name one with --map COLUMN=phone"
        )
    if targets.count("phone") > 1:
        raise LeadImportError("more than one column maps to phone")
    return targets


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a CSV file; raises LeadImportError if it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise LeadImportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LeadImportError(f"{path}: not UTF-8 text (byte {exc.start}); save as UTF-8") from None
    if not text.strip():
        raise LeadImportError(f"{path}: empty file")
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise LeadImportError(f"{path}: not valid CSV: {exc}") from None
    header, body = rows[0], rows[1:]
    return header, body


def unescape_cell(value: str) -> str:
    """Undo the export's formula escape (``'=x`` -> ``=x``)."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


def escape_cell(value: str) -> str:
    """Stop a spreadsheet from running a cell as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class PhoneNormaliser:
    """Parse, validate and format numbers; derive a time zone (pure, cached per region)."""

    def __init__(self, default_region: str, site_timezone: str) -> None:
        self.region = default_region.upper()
        self.site_timezone = site_timezone
        self.country_code = phonenumbers.country_code_for_region(self.region)
        self.site_prefix = f"+{self.country_code}"

    def e164(self, raw: str) -> tuple[str | None, str]:
        """(E.164 or None, reason when None)."""
        text = unescape_cell(raw).strip()
        if not text:
            return None, "missing phone"
        if text.isdigit() and text[0] != "0" and 6 <= len(text) <= 12:
            # Fast path for the common plain national number: build it directly.  When that
            # is a valid number, parse() would return the same one (it only strips a country
            # code from numbers that are invalid as given), so only invalid ones go the slow way.
            quick = phonenumbers.PhoneNumber(
                country_code=self.country_code, national_number=int(text)
            )
            if phonenumbers.is_valid_number(quick):
                return f"+{self.country_code}{text}", ""
        try:
            num = phonenumbers.parse(text, self.region)
        except phonenumbers.NumberParseException:
            return None, "unparseable number"
        if not phonenumbers.is_valid_number(num):
            return None, "invalid number"
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), ""

    def timezone_for(self, e164: str) -> str:
        """The zone of a number: the site's for its own country, else phonenumbers' first."""
        if e164.startswith(self.site_prefix):
            return self.site_timezone  # most numbers: no second parse
        num = phonenumbers.parse(e164, None)
        zones = [z for z in pn_timezone.time_zones_for_number(num) if z != "Etc/Unknown"]
        if not zones:
            return self.site_timezone
        return ZONE_ALIASES.get(zones[0], zones[0])


@dataclass
class _Row:
    line: int
    raw_phone: str
    values: dict[str, Any]


def _check_rows(
    header: list[str],
    body: list[list[str]],
    mapping: Mapping[str, str],
    norm: PhoneNormaliser,
    rejects: list[tuple[int, str, str]],
) -> list[_Row]:
    """Validate every row (no database); the good ones, deduplicated within the file."""
    targets = _resolve_columns(header, mapping)
    phone_col = targets.index("phone")
    first_seen: dict[str, int] = {}
    good: list[_Row] = []
    zones_ok: dict[str, bool] = {}
    for offset, cells in enumerate(body):
        line = offset + 2  # spreadsheet row number: the header is row 1
        if not any(c.strip() for c in cells):
            continue  # blank line
        raw_phone = cells[phone_col] if phone_col < len(cells) else ""
        phone, why = norm.e164(raw_phone)
        if phone is None:
            rejects.append((line, why, raw_phone))
            continue
        if phone in first_seen:
            rejects.append((line, f"duplicate of row {first_seen[phone]}", raw_phone))
            continue
        values: dict[str, Any] = {"phone": phone, "custom": {}, "alt_phones": []}
        problem = ""
        for target, cell in zip(targets, cells, strict=False):
            cell = unescape_cell(cell)
            if target in ("phone", "ignore"):
                continue
            if target.startswith("custom:"):
                if cell != "":
                    values["custom"][target[7:]] = cell
            elif target == "custom_json":
                try:
                    extra = json.loads(cell) if cell.strip() else {}
                except ValueError:
                    extra = None
                if not isinstance(extra, dict):
                    problem = "custom is not a JSON object"
                else:
                    values["custom"].update(extra)
            elif target == "alt_phones":
                for part in cell.replace(",", ";").split(";"):
                    alt, _ = norm.e164(part) if part.strip() else (None, "")
                    if alt and alt != phone and alt not in values["alt_phones"]:
                        values["alt_phones"].append(alt)
            elif target == "priority":
                try:
                    values["priority"] = int(cell.strip() or 0)
                except ValueError:
                    problem = f"bad priority {cell!r}"
            elif target == "timezone":
                tz = cell.strip()
                if tz:
                    tz = ZONE_ALIASES.get(tz, tz)
                    if tz not in zones_ok:
                        try:
                            zone(tz)
                            zones_ok[tz] = True
                        except DialabilityError:
                            zones_ok[tz] = False
                    if not zones_ok[tz]:
                        problem = f"unknown time zone {cell.strip()!r}"
                    values["timezone"] = tz
            else:
                values[target] = cell.strip() if target.endswith("_code") else cell
        if problem:
            rejects.append((line, problem, raw_phone))
            continue
        values.setdefault("timezone", norm.timezone_for(phone))
        first_seen[phone] = line
        good.append(_Row(line, raw_phone, values))
    return good


async def _existing(db: Database, campaign_id: int, phones: list[str]) -> tuple[set[str], set[str]]:
    """(phones already in the campaign, phones on a DNC list that applies)."""
    in_campaign: set[str] = set()
    on_dnc: set[str] = set()
    async with db.sessionmaker() as s:
        in_campaign.update(
            (await s.scalars(select(Lead.phone).where(Lead.campaign_id == campaign_id))).all()
        )
        for i in range(0, len(phones), DNC_CHUNK):
            chunk = phones[i : i + DNC_CHUNK]
            rows = await s.scalars(
                select(Dnc.phone).where(
                    Dnc.phone.in_(chunk),
                    or_(Dnc.campaign_id.is_(None), Dnc.campaign_id == campaign_id),
                )
            )
            on_dnc.update(rows.all())
    return in_campaign, on_dnc


def write_report(path: Path, rejects: Sequence[tuple[int, str, str]]) -> None:
    """The rejection report: row, reason, phone as given (escaped for spreadsheets)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "reason", "phone"])
        for line, reason, raw in sorted(rejects):
            w.writerow([line, reason, escape_cell(raw)])


def report_path_for(path: Path) -> Path:
    """Where the rejection report of an import goes: next to the input."""
    return path.with_name(path.stem + ".rejected.csv")


async def import_leads(
    db: Database,
    campaign_ref: str | int,
    path: Path,
    *,
    default_region: str | None = None,
    mapping: Mapping[str, str] | None = None,
    list_name: str | None = None,
) -> ImportSummary:
    """Import a CSV of leads into a campaign (see the module docstring for the rules)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    async with db.sessionmaker() as s:
        campaign = await get_campaign(s, campaign_ref)
    header, body = read_table(path)
    timings["read"] = time.perf_counter() - started
    norm = PhoneNormaliser(default_region or db.country, db.site_timezone)
    rejects: list[tuple[int, str, str]] = []
    good = _check_rows(header, body, mapping or {}, norm, rejects)
    timings["validate"] = time.perf_counter() - started - timings["read"]
    in_campaign, on_dnc = await _existing(db, campaign.id, [r.values["phone"] for r in good])
    keep: list[_Row] = []
    for row in good:
        phone = row.values["phone"]
        if phone in in_campaign:
            rejects.append((row.line, "already in the campaign", row.raw_phone))
        elif phone in on_dnc:
            rejects.append((row.line, "on a do-not-call list", row.raw_phone))
        else:
            keep.append(row)
    t_insert = time.perf_counter()
    list_id: int | None = None
    async with db.transaction() as s:
        if keep:
            lead_list = LeadList(
                campaign_id=campaign.id, name=list_name or path.name, source=str(path)
            )
            s.add(lead_list)
            await s.flush()
            list_id = lead_list.id
            common = {
                "campaign_id": campaign.id,
                "list_id": list_id,
                "status": "ready",
                "attempts": 0,
                "created_at": utcnow(),
            }
            await bulk_insert_leads(s, [_lead_values(r.values) for r in keep], common)
    if len(keep) >= ANALYZE_AFTER and db.dialect == "postgresql":
        # Fresh statistics, so the hopper's plan sees the new rows before autovacuum does.
        async with db.transaction() as s:
            await s.execute(text("ANALYZE leads"))
    timings["insert"] = time.perf_counter() - t_insert
    db.forget_zones(campaign.id)
    report: Path | None = None
    if rejects:
        report = report_path_for(path)
        write_report(report, rejects)
    reasons = Counter(_reason_kind(r) for _, r, _ in rejects)
    return ImportSummary(
        rows=sum(1 for cells in body if any(c.strip() for c in cells)),
        imported=len(keep),
        rejected=len(rejects),
        reasons=dict(reasons),
        report=report,
        list_id=list_id,
        seconds=time.perf_counter() - started,
        timings=timings,
    )


async def bulk_insert_leads(
    session: AsyncSession, rows: list[dict[str, Any]], common: Mapping[str, Any]
) -> None:
    """Insert leads (``rows`` differ, ``common`` is the same for all) in the session's
    transaction: text-format COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        for i in range(0, len(rows), INSERT_CHUNK):
            chunk = [{**common, **row} for row in rows[i : i + INSERT_CHUNK]]
            await session.execute(insert(Lead), chunk)
        return
    variable = list(rows[0])
    # The common part of every line is rendered once; each row renders only its own fields.
    tail = "\t".join(_copy_field(v) for v in common.values()) + "\n"
    render = [_COPY_RENDER.get(c, _copy_field) for c in variable]
    columns = ", ".join([*variable, *common])
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor() as cur, cur.copy(f"COPY leads ({columns}) FROM STDIN") as copy:
        for i in range(0, len(rows), INSERT_CHUNK):
            lines = [
                "\t".join([fn(row[c]) for fn, c in zip(render, variable, strict=True)])
                + "\t"
                + tail
                for row in rows[i : i + INSERT_CHUNK]
            ]
            await copy.write("".join(lines))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).translate(_COPY_ESCAPES)


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _copy_json(value: Any) -> str:
    return (
        json.dumps(value, ensure_ascii=False).translate(_COPY_ESCAPES)
        if value
        else ("{}" if isinstance(value, dict) else "[]")
    )


#: Renderers for the per-row lead columns whose type is known (the hot loop of an import).
_COPY_RENDER: dict[str, Any] = {
    **{c: _copy_text for c in LEAD_FIELDS if c not in ("alt_phones", "priority")},
    "priority": str,
    "alt_phones": _copy_json,
    "custom": _copy_json,
}


def _reason_kind(reason: str) -> str:
    return "duplicate in file" if reason.startswith("duplicate of row") else reason


#: Every per-row lead field, with its value when the file does not give one.
_ROW_DEFAULTS: dict[str, Any] = {
    **{c: "" for c in LEAD_FIELDS},
    "priority": 0,
    "alt_phones": [],
    "custom": {},
}


def _lead_values(values: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(_ROW_DEFAULTS)
    out.update(values)
    return out


EXPORT_COLUMNS = (
    "id",
    "phone",
    "alt_phones",
    "name",
    "language",
    "timezone",
    "district_code",
    "district_name",
    "mandal_code",
    "mandal_name",
    "shakti_kendra_code",
    "shakti_kendra_name",
    "booth_code",
    "booth_name",
    "priority",
    "status",
    "attempts",
    "last_result",
    "last_called_at",
    "next_dial_after",
    "custom",
)


def _export_cells(lead: Lead) -> list[str]:
    cells: list[str] = []
    for col in EXPORT_COLUMNS:
        value = getattr(lead, col)
        if col == "alt_phones":
            text = ";".join(value or ())
        elif col == "custom":
            text = json.dumps(value or {}, ensure_ascii=False, sort_keys=True) if value else ""
        elif value is None:
            text = ""
        elif hasattr(value, "isoformat"):
            text = value.isoformat()
        else:
            text = str(value)
        cells.append(escape_cell(text))
    return cells


async def export_rows(
    db: Database, campaign_ref: str | int, status: str | None = None
) -> Iterator[list[str]]:
    """Header plus one row per lead of a campaign (escaped cells)."""
    async with db.sessionmaker() as s:
        campaign = await get_campaign(s, campaign_ref)
        query = select(Lead).where(Lead.campaign_id == campaign.id).order_by(Lead.id)
        if status:
            query = query.where(Lead.status == status)
        leads = (await s.scalars(query)).all()
    return iter([list(EXPORT_COLUMNS), *(_export_cells(lead) for lead in leads)])


async def export_leads(
    db: Database, campaign_ref: str | int, out: TextIO, status: str | None = None
) -> int:
    """Write a campaign's leads as CSV to ``out``; the number of leads written."""
    writer = csv.writer(out)
    count = -1
    for row in await export_rows(db, campaign_ref, status):
        writer.writerow(row)
        count += 1
    return count
