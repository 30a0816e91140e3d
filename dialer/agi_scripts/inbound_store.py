"""The IVR's records in the database: one ledger row per inbound call, callbacks the hopper dials.

* :meth:`DbInboundRecorder.call_ended` writes through the spooling :class:`LedgerWriter`
  (never blocks, survives a database outage): ``CallStarted(direction="inbound", did,
  caller_number)``, a ``CallUpdate`` with the IVR path and answers, and one ``CallEnded``.
* :meth:`DbInboundRecorder.request_callback` finds or creates the caller as a lead of the
  callback campaign and adds a pending ``Callback`` due at the requested time, so the hopper
  hands it out first when it is due (inside the calling window, DNC honoured as for any lead).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import phonenumbers
from sqlalchemy import select

from dialer.db.ledger import CallEnded, CallStarted, CallUpdate
from dialer.db.models import Agent, Callback, Campaign, Lead
from dialer.domain.ivr import IvrResult
from dialer.domain.results import CallResult

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from dialer.agi_scripts.ivr import CallbackRequest, InboundCallEnded
    from dialer.config import SiteSettings
    from dialer.db.database import Database
    from dialer.db.ledger import LedgerWriter

log = logging.getLogger(__name__)

RESULTS: dict[str, CallResult] = {
    IvrResult.ANSWERED.value: CallResult.HUMAN,
    IvrResult.ABANDONED_IN_QUEUE.value: CallResult.ABANDONED,
    IvrResult.COMPLETED.value: CallResult.IVR_COMPLETED,
    IvrResult.CALLER_HUNG_UP.value: CallResult.IVR_HANGUP,
    IvrResult.FAILED.value: CallResult.FAILED,
}


class CallbackError(Exception):
    """A callback request that cannot be stored (no campaign, unusable number)."""

    code = "callback_rejected"


class DbInboundRecorder:
    """:class:`~dialer.agi_scripts.ivr.InboundRecorder` over :mod:`dialer.db`."""

    def __init__(
        self,
        db: Database,
        writer: LedgerWriter,
        site: SiteSettings,
        callback_campaign: str = "",
        owner: str = "",
    ) -> None:
        """``callback_campaign``: name or id of the campaign that dials callbacks ('' = first
        running campaign)."""
        self.db = db
        self.writer = writer
        self.site = site
        self.callback_campaign = callback_campaign
        self.owner = owner

    def call_ended(self, record: InboundCallEnded) -> None:
        """Queue the call's three ledger records (start, IVR facts, final result)."""
        w = self.writer
        w.record(
            CallStarted(
                call_id=record.call_id,
                at=record.started_at,
                phone=record.caller[:32],
                owner=self.owner,
                direction="inbound",
                did=record.did[:32],
                caller_number=record.caller[:32],
            )
        )
        answers: dict[str, object] = dict(record.answers)
        w.record(
            CallUpdate(
                call_id=record.call_id,
                agent_number=record.agent,
                wait_seconds=record.queue_wait_seconds,
                recording_path=record.recordings[0] if record.recordings else None,
                ivr_path=list(record.path),
                ivr_answers=answers,
            )
        )
        w.record(
            CallEnded(
                call_id=record.call_id,
                at=record.ended_at,
                result=RESULTS.get(record.result, CallResult.FAILED),
                wait_seconds=record.queue_wait_seconds,
                agent_number=record.agent,
                hangup_cause_text=(record.label or "")[:100],
                recording_path=record.recordings[0] if record.recordings else None,
            )
        )

    async def agent_skills(self, number: str) -> frozenset[str]:
        """An agent's languages and skills (for the queue's skill matching).

        A lookup: it must not take SQLite's write lock (500 agents logging in at once queued
        behind the ledger writer and failed with "database is locked").
        """
        async with self.db.read() as s:
            row = (
                await s.execute(select(Agent.languages, Agent.skills).where(Agent.number == number))
            ).first()
        if row is None:
            return frozenset()
        return frozenset(str(x) for x in [*(row.languages or []), *(row.skills or [])])

    async def request_callback(self, request: CallbackRequest) -> None:
        """Add a pending callback for the caller (creating them as a lead if needed)."""
        phone = self._e164(request.number)
        async with self.db.transaction() as s:
            campaign = await self._campaign(s, request.campaign)
            lead = await s.scalar(
                select(Lead).where(Lead.campaign_id == campaign.id, Lead.phone == phone)
            )
            if lead is None:
                lead = Lead(
                    campaign_id=campaign.id,
                    phone=phone,
                    timezone=self._timezone(phone),
                    language=request.language,
                    status="ready",
                    attempts=0,
                    alt_phones=[],
                    custom={"source": "ivr", "did": request.did},
                )
                s.add(lead)
                await s.flush()
            s.add(
                Callback(
                    event_id=f"ivr:{request.call_id}:{int(request.due_at.timestamp())}"[:64],
                    campaign_id=campaign.id,
                    lead_id=lead.id,
                    agent_number=None,
                    due_at=request.due_at,
                    status="pending",
                    note=f"asked for in the IVR on DID {request.did}",
                    created_by="ivr",
                )
            )

    async def _campaign(self, s: AsyncSession, ref: str | None) -> Campaign:
        name = ref or self.callback_campaign
        query = select(Campaign)
        if name:
            query = query.where(
                Campaign.id == int(name) if name.isdigit() else Campaign.name == name
            )
        else:
            query = query.where(Campaign.status == "running").order_by(Campaign.id)
        campaign = (await s.scalars(query.limit(1))).first()
        if campaign is None:
            raise CallbackError(
                f"no campaign {name!r} for IVR callbacks"
                if name
                else "no running campaign to dial IVR callbacks (set inbound.callback_campaign)"
            )
        return campaign

    def _e164(self, number: str) -> str:
        try:
            parsed = phonenumbers.parse(number, self.site.country)
        except phonenumbers.NumberParseException as exc:
            raise CallbackError(f"caller number {number!r} is not a phone number: {exc}") from None
        if not phonenumbers.is_possible_number(parsed):
            raise CallbackError(f"caller number {number!r} is not a possible phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def _timezone(self, phone: str) -> str:
        from phonenumbers import timezone as pn_timezone

        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(phone))
        real = [z for z in zones if "/" in z]
        return real[0] if len(real) == 1 else self.site.timezone
