"""SQLAlchemy 2 models: the schema of the record (PostgreSQL in production, SQLite embedded).

The Alembic migrations in ``dialer/db/migrations`` create exactly this schema (a test compares
them).  Times are stored as timezone-aware UTC (:class:`UTCDateTime` makes SQLite agree).
Result columns hold :class:`dialer.domain.results.CallResult` values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store in UTC; a naive value is refused (it would be ambiguous)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON everywhere, JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (for Alembic)."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Now, aware UTC (column defaults)."""
    return datetime.now(UTC)


class Campaign(Base):
    """What to call, how and when."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft/running/paused/stopped
    dial_mode: Mapped[str] = mapped_column(String(16), default="predictive")
    ratio: Mapped[float] = mapped_column(Float, default=1.0)  # calls per ready agent (ratio mode)
    pacing_target: Mapped[float] = mapped_column(Float, default=3.0)  # abandonment % ceiling
    caller_id: Mapped[str] = mapped_column(String(64), default="")
    trunk: Mapped[str] = mapped_column(String(64), default="carrier")
    ring_timeout: Mapped[float] = mapped_column(Float, default=25.0)
    calling_start: Mapped[str] = mapped_column(String(5), default="09:00")
    calling_end: Mapped[str] = mapped_column(String(5), default="21:00")
    calling_days: Mapped[str] = mapped_column(String(40), default="mon,tue,wed,thu,fri,sat")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Kolkata")
    tz_policy: Mapped[str] = mapped_column(String(16), default="lead")  # lead / campaign
    blackout_dates: Mapped[list[str]] = mapped_column(Json, default=list)
    retry_rules: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)
    amd_action: Mapped[str] = mapped_column(String(16), default="hangup")  # off/hangup/message
    amd_message: Mapped[str] = mapped_column(String(200), default="")
    notsure_is_live: Mapped[bool] = mapped_column(Boolean, default=True)
    recording: Mapped[bool] = mapped_column(Boolean, default=False)
    wrapup_seconds: Mapped[float] = mapped_column(Float, default=30.0)
    dispositions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    abandon_message: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LeadList(Base):
    """One imported file (or manual batch) of leads for a campaign."""

    __tablename__ = "lead_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lead(Base):
    """A person to call, with their place in the organisation's hierarchy."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("uq_leads_campaign_phone", "campaign_id", "phone", unique=True),
        Index("ix_leads_campaign_tz", "campaign_id", "timezone"),
        Index("ix_leads_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lead_lists.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    alt_phones: Mapped[list[str]] = mapped_column(Json, default=list)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    custom: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    district_code: Mapped[str] = mapped_column(String(32), default="")
    district_name: Mapped[str] = mapped_column(String(200), default="")
    mandal_code: Mapped[str] = mapped_column(String(32), default="")
    mandal_name: Mapped[str] = mapped_column(String(200), default="")
    shakti_kendra_code: Mapped[str] = mapped_column(String(32), default="")
    shakti_kendra_name: Mapped[str] = mapped_column(String(200), default="")
    booth_code: Mapped[str] = mapped_column(String(32), default="")
    booth_name: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first
    status: Mapped[str] = mapped_column(String(16), default="ready")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_result: Mapped[str | None] = mapped_column(String(20))
    last_called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_dial_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inflight_owner: Mapped[str | None] = mapped_column(String(64))
    inflight_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: The hopper's order (priority, then fresh and longest-due first, then id) as an index, so a
#: pick walks the index and stops after n rows instead of sorting the campaign (migration
#: 0002).  SQLite sorts NULLs first on ASC anyway and rejects NULLS FIRST in an index.
Index(
    "ix_leads_hopper",
    Lead.campaign_id,
    Lead.status,
    Lead.priority.desc(),
    Lead.next_dial_after.asc().nulls_first(),  # plain ASC on SQLite: see the migration
    Lead.id,
)


class Agent(Base):
    """A person who logs in at any seat with their number and PIN."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)  # typed on the phone keypad
    name: Mapped[str] = mapped_column(String(200), default="")
    pin_hash: Mapped[str] = mapped_column(String(255), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_pins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    languages: Mapped[list[str]] = mapped_column(Json, default=list)
    skills: Mapped[list[str]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What work a supervisor gave them (dialer.domain.work.WorkMode values; `queue assign`) and
    # the campaign they were put on (preferred at login); both outlive a controller restart.
    work_mode: Mapped[str] = mapped_column(
        String(16), default="inbound_first", server_default="inbound_first"
    )
    work_campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )


class AgentCampaign(Base):
    """Which campaigns an agent may take calls for."""

    __tablename__ = "agent_campaigns"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )


class AgentStateLog(Base):
    """Every agent state change: login, logout, pause (with reason), wrap-up, ready ..."""

    __tablename__ = "agent_state_log"
    __table_args__ = (Index("ix_agent_state_log_agent_at", "agent_number", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)  # idempotent replay
    agent_number: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(100), default="")
    seat: Mapped[str] = mapped_column(String(64), default="")
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    call_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Dnc(Base):
    """A do-not-call entry: global (campaign_id NULL) or for one campaign."""

    __tablename__ = "dnc"
    __table_args__ = (
        Index(
            "uq_dnc_global_phone",
            "phone",
            unique=True,
            postgresql_where=text("campaign_id IS NULL"),
            sqlite_where=text("campaign_id IS NULL"),
        ),
        Index(
            "uq_dnc_campaign_phone",
            "campaign_id",
            "phone",
            unique=True,
            postgresql_where=text("campaign_id IS NOT NULL"),
            sqlite_where=text("campaign_id IS NOT NULL"),
        ),
        # The hopper's anti-join asks "this phone, global or this campaign": one index on phone
        # serves both halves (the partial unique ones cannot serve the OR).
        Index("ix_dnc_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(100), default="manual")
    note: Mapped[str] = mapped_column(Text, default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Call(Base):
    """The ledger: one row per originate (or inbound call), keyed by our call id."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_campaign_originated", "campaign_id", "originated_at"),
        Index("ix_calls_lead", "lead_id"),
        Index("ix_calls_open", "owner", "final"),
    )

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # = AMI ChannelId
    direction: Mapped[str] = mapped_column(String(8), default="outbound")
    owner: Mapped[str] = mapped_column(String(64), default="")  # controller that placed it
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    lead_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    phone: Mapped[str] = mapped_column(String(32), default="")
    trunk: Mapped[str] = mapped_column(String(64), default="")
    agent_number: Mapped[str | None] = mapped_column(String(16))
    originated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    wrap_seconds: Mapped[float | None] = mapped_column(Float)
    handoff_ms: Mapped[float | None] = mapped_column(Float)
    result: Mapped[str | None] = mapped_column(String(20))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str] = mapped_column(String(100), default="")
    hangup_leg: Mapped[str] = mapped_column(String(8), default="")
    amd_status: Mapped[str] = mapped_column(String(16), default="")
    amd_cause: Mapped[str] = mapped_column(String(64), default="")
    disposition: Mapped[str | None] = mapped_column(String(32))
    recording_path: Mapped[str] = mapped_column(Text, default="")
    pacing_decision: Mapped[dict[str, Any] | None] = mapped_column(Json)
    did: Mapped[str] = mapped_column(String(32), default="")
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    ivr_path: Mapped[list[Any] | None] = mapped_column(Json)
    ivr_answers: Mapped[dict[str, Any] | None] = mapped_column(Json)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Disposition(Base):
    """An agent's disposition of a call (the code from the campaign's set, and a note)."""

    __tablename__ = "dispositions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    lead_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    agent_number: Mapped[str | None] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Callback(Base):
    """A call someone asked for at a time, for one agent or for anyone."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "campaign_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("leads.id", ondelete="CASCADE")
    )
    agent_number: Mapped[str | None] = mapped_column(String(16))  # None: anyone
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/done/cancelled
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLog(Base):
    """A supervisor action: who, what, on what, when, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    result: Mapped[str] = mapped_column(String(200), default="ok")
