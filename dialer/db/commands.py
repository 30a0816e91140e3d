"""What the ``dialer db|campaign|leads|dnc|agents`` commands do, behind their click shells.

Each function takes the loaded Settings and plain arguments, runs against the database named by
``Settings.database.url`` and returns text lines to print.  Problems a user can fix raise
:class:`CommandError` with one line; ``dialer.cli`` turns it into a click error.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from dialer.db.database import Database

if TYPE_CHECKING:
    from dialer.config import Settings

T = TypeVar("T")


class CommandError(Exception):
    """A one-line problem for the user."""


def safe_url(url: str) -> str:
    """The database URL with any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable url)"


def run(settings: Settings, job: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``job`` against the configured database; user-fixable errors become CommandError."""
    from dialer.db.agents import AgentError
    from dialer.db.campaigns import CampaignError
    from dialer.db.dnc import DncError
    from dialer.db.leads_io import LeadImportError
    from dialer.domain.dialability import DialabilityError

    async def main() -> T:
        db = Database.from_settings(settings)
        try:
            return await job(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except (AgentError, CampaignError, DncError, LeadImportError, DialabilityError) as exc:
        raise CommandError(str(exc)) from None
    except (OperationalError, DBAPIError, OSError) as exc:
        url = safe_url(settings.database.url.get_secret_value())
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        hint = ""
        if "no such table" in detail or "does not exist" in detail:
            hint = " (run `dialer db upgrade` first)"
        raise CommandError(f"database {url}: {detail}{hint}") from None


def key_values(items: Sequence[str]) -> dict[str, Any]:
    """``["ratio=2", "dispositions=[...]"]`` -> dict; JSON values are parsed when they parse."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{item!r}: use KEY=VALUE")
        text = value.strip()
        parsed: Any = text
        if text[:1] in "[{":
            try:
                parsed = json.loads(text)
            except ValueError:
                raise CommandError(f"{key}: not valid JSON") from None
        out[key.strip().replace("-", "_")] = parsed
    return out


def retry_json(specs: Sequence[str], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """``--retry busy=15m/5`` options merged into a campaign's retry_rules JSON."""
    from dialer.domain.dialability import parse_retry_spec

    rules = dict(current or {})
    for spec in specs:
        result, rule = parse_retry_spec(spec)
        rules[result.value] = rule.to_json()
    return rules


# ------------------------------------------------------------------------------ db


def db_upgrade(settings: Settings, revision: str) -> list[str]:
    """Migrate the database; report the revision."""
    from dialer.db.engine import current_revision

    async def job(db: Database) -> list[str]:
        before = await current_revision(db.engine)
        await db.upgrade(revision)
        after = await current_revision(db.engine)
        where = safe_url(db.url)
        if before == after:
            return [f"{where}: already at revision {after}"]
        return [f"{where}: upgraded {before or 'empty'} -> {after}"]

    return run(settings, job)


def db_current(settings: Settings) -> list[str]:
    """The database's revision."""
    from dialer.db.engine import current_revision

    async def job(db: Database) -> list[str]:
        rev = await current_revision(db.engine)
        return [f"{safe_url(db.url)}: revision {rev or '(empty: run `dialer db upgrade`)'}"]

    return run(settings, job)


# ------------------------------------------------------------------------------ campaign


async def _audit(db: Database, action: str, target: str, params: dict[str, Any]) -> None:
    from dialer.db.models import AuditLog, utcnow

    async with db.transaction() as s:
        s.add(
            AuditLog(
                at=utcnow(),
                actor=_actor(),
                action=action,
                target=target,
                params=json.loads(json.dumps(params, default=str)),
                result="ok",
            )
        )


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def campaign_create(settings: Settings, name: str, values: dict[str, Any]) -> list[str]:
    """Create a campaign."""
    from dialer.db.campaigns import create_campaign

    async def job(db: Database) -> list[str]:
        async with db.transaction() as s:
            row = await create_campaign(s, name, **values)
            cid, status = row.id, row.status
        await _audit(db, "campaign.create", name, values)
        return [f"campaign {name!r} created (id {cid}, status {status})"]

    return run(settings, job)


def campaign_set(
    settings: Settings, ref: str, values: dict[str, Any], retry: Sequence[str]
) -> list[str]:
    """Change a campaign's settings (validated all together), and note it in the audit log."""
    from dialer.db.campaigns import get_campaign, update_campaign

    async def job(db: Database) -> list[str]:
        async with db.transaction() as s:
            row = await get_campaign(s, ref)
            if retry:
                values["retry_rules"] = retry_json(retry, row.retry_rules)
            if not values:
                raise CommandError("nothing to set: give KEY=VALUE or --retry")
            await update_campaign(s, row.id, **values)
            name = row.name
        await _audit(db, "campaign.set", name, values)
        return [f"campaign {name!r}: " + ", ".join(f"{k}={v}" for k, v in values.items())]

    return run(settings, job)


async def _lead_counts(db: Database) -> dict[int, dict[str, int]]:
    from dialer.db.models import Lead

    async with db.sessionmaker() as s:
        rows = await s.execute(
            select(Lead.campaign_id, Lead.status, func.count()).group_by(
                Lead.campaign_id, Lead.status
            )
        )
        out: dict[int, dict[str, int]] = {}
        for cid, status, n in rows.all():
            out.setdefault(cid, {})[status] = n
        return out


def campaign_list(settings: Settings) -> list[list[str]]:
    """Rows of a campaign table (header first)."""
    from dialer.db.campaigns import list_campaigns

    async def job(db: Database) -> list[list[str]]:
        async with db.sessionmaker() as s:
            rows = await list_campaigns(s)
        counts = await _lead_counts(db)
        table = [["id", "name", "status", "mode", "hours", "leads ready", "leads total"]]
        for r in rows:
            c = counts.get(r.id, {})
            table.append(
                [
                    str(r.id),
                    r.name,
                    r.status,
                    r.dial_mode,
                    f"{r.calling_start}-{r.calling_end} {r.calling_days}",
                    str(c.get("ready", 0)),
                    str(sum(c.values())),
                ]
            )
        return table

    return run(settings, job)


def campaign_show(settings: Settings, ref: str) -> dict[str, Any]:
    """A campaign's settings, retry rules in full and lead counts by status."""
    from dialer.db.campaigns import campaign_as_dict, get_campaign
    from dialer.domain.dialability import retry_rules_from_json, retry_rules_to_json

    async def job(db: Database) -> dict[str, Any]:
        async with db.sessionmaker() as s:
            row = await get_campaign(s, ref)
            data = campaign_as_dict(row)
        data["retry_rules"] = retry_rules_to_json(retry_rules_from_json(data["retry_rules"]))
        data["leads"] = (await _lead_counts(db)).get(data["id"], {})
        return data

    return run(settings, job)


# ------------------------------------------------------------------------------ leads


def leads_import(
    settings: Settings,
    campaign: str,
    path: Path,
    region: str | None,
    mapping: Sequence[str],
    list_name: str | None,
) -> list[str]:
    """Import a CSV of leads; the summary lines."""
    from dialer.db.leads_io import import_leads, parse_mapping

    cols = parse_mapping(mapping)

    async def job(db: Database) -> list[str]:
        summary = await import_leads(
            db, campaign, path, default_region=region, mapping=cols, list_name=list_name
        )
        lines = [
            f"{path}: {summary.rows} rows, {summary.imported} imported, "
            f"{summary.rejected} rejected ({summary.seconds:.2f} s)"
        ]
        for reason, n in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {n:>7}  {reason}")
        if summary.report is not None:
            lines.append(f"rejection report: {summary.report}")
        return lines

    return run(settings, job)


def leads_export(settings: Settings, campaign: str, out: Path | None, status: str | None) -> str:
    """Export a campaign's leads to a file (or stdout when ``out`` is None)."""
    from dialer.db.leads_io import export_leads

    async def job(db: Database) -> str:
        if out is None:
            n = await export_leads(db, campaign, sys.stdout, status)
            return ""
        with out.open("w", newline="", encoding="utf-8") as fh:
            n = await export_leads(db, campaign, fh, status)
        return f"{n} leads written to {out}"

    return run(settings, job)


# ------------------------------------------------------------------------------ dnc


def dnc_add(
    settings: Settings, numbers: Sequence[str], campaign: str | None, source: str, note: str
) -> list[str]:
    """List numbers."""
    from dialer.db.dnc import add_numbers

    async def job(db: Database) -> list[str]:
        n = await add_numbers(db, numbers, campaign=campaign, source=source, note=note)
        scope = f"campaign {campaign!r}" if campaign else "the global list"
        return [f"{n} added to {scope} ({len(numbers) - n} already there)"]

    return run(settings, job)


def dnc_remove(settings: Settings, numbers: Sequence[str], campaign: str | None) -> list[str]:
    """Unlist numbers."""
    from dialer.db.dnc import remove_numbers

    async def job(db: Database) -> list[str]:
        n = await remove_numbers(db, numbers, campaign=campaign)
        await _audit(db, "dnc.remove", campaign or "global", {"numbers": list(numbers)})
        return [f"{n} removed"]

    return run(settings, job)


def dnc_import(
    settings: Settings, path: Path, campaign: str | None, source: str, column: str | None
) -> list[str]:
    """Import a list or registry extract."""
    from dialer.db.dnc import import_dnc

    async def job(db: Database) -> list[str]:
        r = await import_dnc(db, path, campaign=campaign, source=source, column=column)
        return [
            f"{path}: {r.lines} numbers read, {r.added} added, {r.already} already listed, "
            f"{r.invalid} invalid"
        ]

    return run(settings, job)


def dnc_check(settings: Settings, number: str, campaign: str | None) -> tuple[bool, list[str]]:
    """Whether a number is listed, and where."""
    from dialer.db.dnc import check_number

    async def job(db: Database) -> tuple[bool, list[str]]:
        entries = await check_number(db, number, campaign=campaign)
        if not entries:
            return False, [f"{number}: not on a do-not-call list"]
        return True, [
            f"{e.phone}: on DNC ({e.scope}) since {e.added_at:%Y-%m-%d}, source {e.source}"
            + (f", {e.note}" if e.note else "")
            for e in entries
        ]

    return run(settings, job)


# ------------------------------------------------------------------------------ agents


def agents_add(
    settings: Settings,
    number: str,
    name: str,
    pin: str,
    languages: Sequence[str],
    skills: Sequence[str],
    campaigns: Sequence[str],
) -> list[str]:
    """Create an agent."""
    from dialer.db.agents import add_agent

    async def job(db: Database) -> list[str]:
        async with db.transaction() as s:
            await add_agent(
                s, number, name, pin, languages=languages, skills=skills, campaigns=campaigns
            )
        return [f"agent {number} ({name}) added"]

    return run(settings, job)


def agents_import(settings: Settings, path: Path) -> list[str]:
    """Import agents from CSV; generated PINs go to a private file next to it, never stdout."""
    from dialer.db.agents import import_agents

    async def job(db: Database) -> list[str]:
        async with db.transaction() as s:
            result = await import_agents(s, path)
        lines = [f"{result.added} agents added from {path}"]
        if result.generated_pins:
            pins = path.with_name(path.stem + ".pins.csv")
            fd = os.open(pins, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("number,pin\n")
                fh.writelines(f"{n},{p}\n" for n, p in result.generated_pins.items())
            lines.append(
                f"{len(result.generated_pins)} PINs were generated: {pins} (mode 600; hand "
                "them out, then delete the file)"
            )
        return lines

    return run(settings, job)


def agents_set_pin(settings: Settings, number: str, pin: str) -> list[str]:
    """Set a new PIN (clears any lockout)."""
    from dialer.db.agents import set_pin

    async def job(db: Database) -> list[str]:
        async with db.transaction() as s:
            await set_pin(s, number, pin)
        await _audit(db, "agent.set_pin", number, {})
        return [f"agent {number}: PIN changed, lockout cleared"]

    return run(settings, job)


def agents_disable(settings: Settings, number: str, enable: bool) -> list[str]:
    """Disable or re-enable an agent."""
    from dialer.db.agents import set_disabled

    async def job(db: Database) -> list[str]:
        async with db.transaction() as s:
            await set_disabled(s, number, not enable)
        await _audit(db, "agent.enable" if enable else "agent.disable", number, {})
        return [f"agent {number}: {'enabled' if enable else 'disabled'}"]

    return run(settings, job)
