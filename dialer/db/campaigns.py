"""Campaign repository: create, list, show, change; and the frozen snapshot the engine uses.

:class:`CampaignConfig` is what the rest of the system reads (the engine, the hopper, the
dialplan variables); it is built from the row and carries the parsed calling window and retry
rules.  Changes go through :func:`create_campaign` / :func:`update_campaign`, which validate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import Campaign
from dialer.domain.dialability import (
    CallingWindow,
    DialabilityError,
    RetryRule,
    parse_days,
    parse_hhmm,
    retry_rules_from_json,
    zone,
)
from dialer.domain.results import CallResult

DIAL_MODES = ("predictive", "progressive", "ratio", "preview", "manual")
STATUSES = ("draft", "running", "paused", "stopped")
AMD_ACTIONS = ("off", "hangup", "message")
TZ_POLICIES = ("lead", "campaign")

#: The disposition set a new campaign starts with (code typed on the phone, label, effects).
DEFAULT_DISPOSITIONS: list[dict[str, Any]] = [
    {"code": "1", "label": "Reached, informed", "final": True},
    {"code": "2", "label": "Call back later", "callback": True},
    {"code": "3", "label": "Wrong number", "final": True},
    {"code": "4", "label": "Do not call", "final": True, "dnc": True},
    {"code": "5", "label": "Language barrier", "final": False},
]


class CampaignError(ValueError):
    """A campaign that does not exist, or a setting that is not valid."""


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """A campaign as the engine and hopper see it (immutable snapshot of the row)."""

    id: int
    name: str
    status: str
    dial_mode: str
    ratio: float
    pacing_target: float
    caller_id: str
    trunk: str
    ring_timeout: float
    window: CallingWindow
    timezone: str
    tz_policy: str
    retry_rules: Mapping[CallResult, RetryRule]
    max_attempts: int
    amd_action: str
    amd_message: str
    notsure_is_live: bool
    recording: bool
    wrapup_seconds: float
    dispositions: tuple[Mapping[str, Any], ...]
    abandon_message: str

    @classmethod
    def from_row(cls, row: Campaign) -> CampaignConfig:
        """Parse a campaigns row."""
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            dial_mode=row.dial_mode,
            ratio=row.ratio,
            pacing_target=row.pacing_target,
            caller_id=row.caller_id,
            trunk=row.trunk,
            ring_timeout=row.ring_timeout,
            window=CallingWindow(
                start=parse_hhmm(row.calling_start),
                end=parse_hhmm(row.calling_end),
                days=parse_days(row.calling_days),
                blackout=frozenset(date.fromisoformat(d) for d in row.blackout_dates or ()),
            ),
            timezone=row.timezone,
            tz_policy=row.tz_policy,
            retry_rules=retry_rules_from_json(row.retry_rules),
            max_attempts=row.max_attempts,
            amd_action=row.amd_action,
            amd_message=row.amd_message,
            notsure_is_live=row.notsure_is_live,
            recording=row.recording,
            wrapup_seconds=row.wrapup_seconds,
            dispositions=tuple(row.dispositions or ()),
            abandon_message=row.abandon_message,
        )

    def disposition(self, code: str) -> Mapping[str, Any] | None:
        """The disposition entry with this code, if the campaign has one."""
        return next((d for d in self.dispositions if str(d.get("code")) == code), None)


#: Settable fields and how a text value (from the CLI) becomes a column value.
def _float(v: Any) -> float:
    return float(v)


def _int(v: Any) -> int:
    return int(v)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise CampaignError(f"{v!r} is not yes/no")


def _choice(options: Sequence[str]) -> Any:
    def check(v: Any) -> str:
        text = str(v).strip().lower()
        if text not in options:
            raise CampaignError(f"{v!r} is not one of {', '.join(options)}")
        return text

    return check


def _hhmm(v: Any) -> str:
    parse_hhmm(str(v))
    return str(v).strip()


def _days(v: Any) -> str:
    from dialer.domain.dialability import format_days

    return format_days(parse_days(str(v)))


def _tz(v: Any) -> str:
    zone(str(v))
    return str(v)


def _dates(v: Any) -> list[str]:
    items = v if isinstance(v, list) else [p for p in str(v).split(",") if p.strip()]
    return sorted({date.fromisoformat(str(p).strip()).isoformat() for p in items})


def _retry(v: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping):
        raise CampaignError("retry_rules must be a JSON object")
    retry_rules_from_json(v)  # validates
    return dict(v)


def _dispositions(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list) or not all(isinstance(d, dict) and "code" in d for d in v):
        raise CampaignError("dispositions must be a JSON list of objects with a code")
    return [dict(d) for d in v]


def _text(v: Any) -> str:
    return str(v)


FIELDS: dict[str, Any] = {
    "description": _text,
    "status": _choice(STATUSES),
    "dial_mode": _choice(DIAL_MODES),
    "ratio": _float,
    "pacing_target": _float,
    "caller_id": _text,
    "trunk": _text,
    "ring_timeout": _float,
    "calling_start": _hhmm,
    "calling_end": _hhmm,
    "calling_days": _days,
    "timezone": _tz,
    "tz_policy": _choice(TZ_POLICIES),
    "blackout_dates": _dates,
    "retry_rules": _retry,
    "max_attempts": _int,
    "amd_action": _choice(AMD_ACTIONS),
    "amd_message": _text,
    "notsure_is_live": _bool,
    "recording": _bool,
    "wrapup_seconds": _float,
    "dispositions": _dispositions,
    "abandon_message": _text,
}


def _apply(row: Campaign, values: Mapping[str, Any]) -> None:
    for key, raw in values.items():
        if key not in FIELDS:
            raise CampaignError(f"unknown campaign setting {key!r} (known: {', '.join(FIELDS)})")
        try:
            setattr(row, key, FIELDS[key](raw))
        except (ValueError, TypeError, DialabilityError) as exc:
            raise CampaignError(f"{key}: {exc}") from None
    if parse_hhmm(row.calling_start) >= parse_hhmm(row.calling_end):
        raise CampaignError("calling_start must be before calling_end")
    if row.ratio <= 0 or not 0 < row.pacing_target <= 100 or row.ring_timeout <= 0:
        raise CampaignError("ratio, pacing_target (0-100 %) and ring_timeout must be positive")


async def create_campaign(session: AsyncSession, name: str, **values: Any) -> Campaign:
    """Add a campaign (status draft unless given); raises CampaignError on a bad value."""
    if not name or len(name) > 100:
        raise CampaignError("campaign name must be 1-100 characters")
    if await session.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise CampaignError(f"campaign {name!r} already exists")
    row = Campaign(
        name=name,
        description="",
        status="draft",
        dial_mode="predictive",
        ratio=1.0,
        pacing_target=3.0,
        caller_id="",
        trunk="carrier",
        ring_timeout=25.0,
        calling_start="09:00",
        calling_end="21:00",
        calling_days="mon,tue,wed,thu,fri,sat",
        timezone="Asia/Kolkata",
        tz_policy="lead",
        blackout_dates=[],
        retry_rules={},
        max_attempts=6,
        amd_action="hangup",
        amd_message="",
        notsure_is_live=True,
        recording=False,
        wrapup_seconds=30.0,
        dispositions=[dict(d) for d in DEFAULT_DISPOSITIONS],
        abandon_message="",
    )
    _apply(row, values)
    session.add(row)
    await session.flush()
    return row


async def get_campaign(session: AsyncSession, ref: str | int) -> Campaign:
    """A campaign by id or name; raises CampaignError if there is none."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = await session.get(Campaign, int(ref))
    else:
        row = await session.scalar(select(Campaign).where(Campaign.name == ref))
    if row is None:
        raise CampaignError(f"no campaign {ref!r}")
    return row


async def update_campaign(session: AsyncSession, ref: str | int, **values: Any) -> Campaign:
    """Change settings of a campaign; all-or-nothing validation."""
    row = await get_campaign(session, ref)
    _apply(row, values)
    await session.flush()
    return row


async def list_campaigns(session: AsyncSession) -> list[Campaign]:
    """All campaigns by name."""
    return list((await session.scalars(select(Campaign).order_by(Campaign.name))).all())


def campaign_as_dict(row: Campaign) -> dict[str, Any]:
    """A row as plain JSON-able data (for `campaign show`)."""
    out: dict[str, Any] = {"id": row.id, "name": row.name}
    for key in FIELDS:
        out[key] = getattr(row, key)
    out["created_at"] = row.created_at.isoformat() if row.created_at else None
    return out
