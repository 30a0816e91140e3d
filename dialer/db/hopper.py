"""The hopper: which leads of a campaign may be dialled now, handed out once.

Order: scheduled callbacks that are due first (oldest due first), then leads by priority (higher
first), then fresh leads and the longest-due retries first, then by id (index
``ix_leads_hopper`` is in exactly this order).  A lead is handed out only when:

* the campaign is ``running``; the lead is ``ready`` (callbacks: also ``done``), not reserved;
* its local time (lead's zone, or the campaign's under ``tz_policy="campaign"``) is inside the
  campaign's calling window narrowed to the site floor, on a calling day, not on a blackout date;
* its number is not on the global or the campaign's DNC list;
* it is under the campaign's max attempts and past ``next_dial_after`` (set by the retry rules).

Two controllers at once (PostgreSQL): candidate rows are locked ``FOR UPDATE SKIP LOCKED`` and
marked in flight (``inflight_owner``, ``inflight_until``) in the same transaction, so a lead is
never handed to two controllers.  SQLite serves one controller (its writes are serialised).
:func:`recheck_before_dial` runs just before the originate, so a DNC entry added a second ago
is honoured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Exists, and_, exists, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.campaigns import CampaignConfig
from dialer.db.models import Callback, Campaign, Dnc, Lead
from dialer.domain.dialability import LeadStatus, SiteFloor, allowed_timezones, window_refusal

#: How long a reservation holds before the lead goes back to the pool if nothing is dialled.
DEFAULT_HOLD = timedelta(seconds=120)


@dataclass(frozen=True, slots=True)
class LeadToDial:
    """A lead handed out by the hopper, reserved for ``owner`` until ``reserved_until``."""

    lead_id: int
    campaign_id: int
    phone: str
    alt_phones: tuple[str, ...]
    name: str
    language: str
    timezone: str
    attempts: int
    priority: int
    reserved_until: datetime
    callback_id: int | None = None
    callback_agent: str | None = None  # agent number the callback is for; None: anyone


def dnc_clause(phone_col: Any, campaign_id: int) -> Exists:
    """SQL: the number is on the global or this campaign's DNC list."""
    return exists().where(
        Dnc.phone == phone_col,
        or_(Dnc.campaign_id.is_(None), Dnc.campaign_id == campaign_id),
    )


def lead_zone(campaign: CampaignConfig, lead_tz: str) -> str:
    """The zone a lead's calling window is read in, per the campaign's policy."""
    return campaign.timezone if campaign.tz_policy == "campaign" or not lead_tz else lead_tz


async def reserve(
    session: AsyncSession,
    campaign: CampaignConfig,
    n: int,
    now: datetime,
    owner: str,
    floor: SiteFloor,
    zones: Iterable[str],
    hold: timedelta = DEFAULT_HOLD,
) -> list[LeadToDial]:
    """Reserve up to ``n`` dialable leads for ``owner`` (caller commits the transaction).

    ``zones`` are the distinct time zones of the campaign's leads (the caller caches them).
    """
    if n <= 0 or campaign.status != "running":
        return []
    if campaign.tz_policy == "campaign":
        open_now = window_refusal(now, campaign.timezone, campaign.window, floor) is None
        allowed = None if open_now else frozenset[str]()
    else:
        allowed = allowed_timezones(now, zones, campaign.window, floor)
    if allowed is not None and not allowed:
        return []
    free = or_(Lead.inflight_until.is_(None), Lead.inflight_until < now)
    in_zone: ColumnElement[bool] = (
        Lead.timezone.in_(sorted(allowed)) if allowed is not None else true()
    )
    not_dnc = ~dnc_clause(Lead.phone, campaign.id)

    picked: list[tuple[Lead, Callback | None]] = []
    callbacks = (
        select(Lead, Callback)
        .join(Callback, Callback.lead_id == Lead.id)
        .where(
            Callback.campaign_id == campaign.id,
            Callback.status == "pending",
            Callback.due_at <= now,
            Lead.status.in_([LeadStatus.READY.value, LeadStatus.DONE.value]),
            free,
            in_zone,
            not_dnc,
        )
        .order_by(Callback.due_at, Callback.id)
        .limit(n)
        .with_for_update(skip_locked=True, of=Lead)
    )
    seen: set[int] = set()
    for lead, cb in (await session.execute(callbacks)).all():
        if lead.id not in seen:
            seen.add(lead.id)
            picked.append((lead, cb))
    if len(picked) < n:
        regular = (
            select(Lead)
            .where(
                Lead.campaign_id == campaign.id,
                Lead.status == LeadStatus.READY.value,
                or_(Lead.next_dial_after.is_(None), Lead.next_dial_after <= now),
                Lead.attempts < campaign.max_attempts,
                free,
                in_zone,
                not_dnc,
            )
            .order_by(Lead.priority.desc(), Lead.next_dial_after.asc().nulls_first(), Lead.id)
            .limit(n - len(picked) + len(seen))
            .with_for_update(skip_locked=True)
        )
        for lead in (await session.scalars(regular)).all():
            if lead.id not in seen and len(picked) < n:
                seen.add(lead.id)
                picked.append((lead, None))
    if not picked:
        return []
    until = now + hold
    # Mark only rows that are still free and say which: on PostgreSQL they are all ours (locked
    # above); on SQLite the select ran before the write lock, so a concurrent reserver in this
    # process may have taken some in between -- they are simply not handed out here.
    marked = await session.execute(
        update(Lead)
        .where(Lead.id.in_([lead.id for lead, _ in picked]), free)
        .values(inflight_owner=owner, inflight_until=until)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    ours = set(marked.scalars().all())
    picked = [(lead, cb) for lead, cb in picked if lead.id in ours]
    return [
        LeadToDial(
            lead_id=lead.id,
            campaign_id=campaign.id,
            phone=lead.phone,
            alt_phones=tuple(lead.alt_phones or ()),
            name=lead.name,
            language=lead.language,
            timezone=lead.timezone,
            attempts=lead.attempts,
            priority=lead.priority,
            reserved_until=until,
            callback_id=cb.id if cb is not None else None,
            callback_agent=cb.agent_number if cb is not None else None,
        )
        for lead, cb in picked
    ]


async def recheck(
    session: AsyncSession,
    lead_id: int,
    phone: str,
    now: datetime,
    floor: SiteFloor,
    owner: str | None = None,
) -> str | None:
    """None if the lead may be dialled on ``phone`` right now, else the reason not to.

    Reasons: ``lead_gone``, ``campaign_not_running``, ``not_reserved`` (reservation lost or held
    by another owner), ``lead_<status>``, ``dnc``, ``window_<hours|day|blackout>``.  A number
    found on a DNC list marks the lead ``dnc`` and releases it, so it is never picked again.
    """
    row = (
        await session.execute(select(Lead, Campaign).join(Campaign).where(Lead.id == lead_id))
    ).first()
    if row is None:
        return "lead_gone"
    lead, camp_row = row
    if camp_row.status != "running":
        return "campaign_not_running"
    if owner is not None and (
        lead.inflight_owner != owner or lead.inflight_until is None or lead.inflight_until < now
    ):
        return "not_reserved"
    on_dnc = await session.scalar(select(dnc_clause(phone, lead.campaign_id)))
    if on_dnc:
        await session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(status=LeadStatus.DNC.value, inflight_owner=None, inflight_until=None)
        )
        return "dnc"
    if lead.status not in (LeadStatus.READY.value, LeadStatus.DONE.value):
        return f"lead_{lead.status}"
    campaign = CampaignConfig.from_row(camp_row)
    refusal = window_refusal(now, lead_zone(campaign, lead.timezone), campaign.window, floor)
    if refusal is not None:
        return f"window_{refusal}"
    return None


async def release(session: AsyncSession, lead_ids: Sequence[int], owner: str | None = None) -> int:
    """Give reserved leads back (not dialled); only ``owner``'s reservations when given."""
    cond: list[ColumnElement[bool]] = [Lead.id.in_(list(lead_ids))]
    if owner is not None:
        cond.append(Lead.inflight_owner == owner)
    result = await session.execute(
        update(Lead)
        .where(and_(*cond))
        .values(inflight_owner=None, inflight_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def campaign_zones(session: AsyncSession, campaign_id: int) -> list[str]:
    """The distinct time zones of a campaign's leads."""
    rows = await session.scalars(
        select(Lead.timezone).where(Lead.campaign_id == campaign_id).distinct()
    )
    return [tz for tz in rows.all() if tz]
