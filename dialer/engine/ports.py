"""What the engine needs from the outside world, as small typed ports, and the records it emits.

The engine never imports a database driver, a socket or Redis: the composition root
(``dialer.app``) hands it adapters that satisfy these protocols, and the unit tests hand it
fakes.  Records going out (ledger rows, agent log lines, dispositions) are frozen dataclasses.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dialer.domain.results import CallResult


class Clock(Protocol):
    """The engine's time source: ``now()`` in seconds, ``real(s)`` converts to wall seconds."""

    def now(self) -> float:
        """Seconds on a monotonic (possibly scaled) clock."""
        ...

    def real(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of this clock take."""
        ...


class RealClock:
    """Plain monotonic time (production)."""

    speed = 1.0

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def real(self, seconds: float) -> float:
        """Identity: one second is one second."""
        return max(seconds, 0.0)


class ScaledClock:
    """Monotonic time times ``speed`` (the demo and the tests, in step with the simulator)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Scaled seconds since creation (plus a large offset: origin is arbitrary)."""
        return 1000.0 + (time.monotonic() - self._t0) * self.speed

    def real(self, seconds: float) -> float:
        """Real seconds for a scaled duration."""
        return max(seconds, 0.0) / self.speed


@dataclass(frozen=True, slots=True)
class DispositionDef:
    """One disposition code a campaign accepts from the agent's keypad."""

    code: str
    name: str
    callback_minutes: float | None = None  # set: this disposition schedules a callback
    final: bool = False  # the lead is done (no more attempts)
    dnc: bool = False  # the number goes on the campaign's do-not-call list


#: Callback delay when a "call back" disposition does not say (minutes).
DEFAULT_CALLBACK_MINUTES = 60.0

DEFAULT_DISPOSITIONS: tuple[DispositionDef, ...] = (
    DispositionDef("1", "Reached, informed", final=True),
    DispositionDef("2", "Call back later", callback_minutes=DEFAULT_CALLBACK_MINUTES),
    DispositionDef("3", "Wrong number", final=True),
    DispositionDef("4", "Do not call", final=True, dnc=True),
    DispositionDef("5", "Language barrier"),
)
NO_DISPOSITION = "none"  # what the ledger gets when wrap-up ended without an entry


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """What the engine needs to know about one campaign."""

    id: int
    name: str
    status: str = "running"
    dial_mode: str = "predictive"  # predictive / progressive / ratio / preview / manual
    ratio: float = 1.0
    pacing_target: float = 3.0  # abandonment ceiling, percent
    caller_id: str = ""
    trunk: str = "carrier"
    ring_timeout: float = 25.0
    amd_action: str = "hangup"  # off / hangup / message
    amd_message: str = ""
    notsure_is_live: bool = True
    recording: bool = False
    wrapup_seconds: float = 30.0
    dispositions: tuple[DispositionDef, ...] = DEFAULT_DISPOSITIONS
    default_disposition: str = NO_DISPOSITION
    abandon_message: str = ""
    timezone: str = "Asia/Kolkata"

    def disposition(self, code: str) -> DispositionDef | None:
        """The disposition with this keypad code, or None."""
        for item in self.dispositions:
            if item.code == code:
                return item
        return None


@dataclass(frozen=True, slots=True)
class LeadTicket:
    """A lead the hopper reserved for this controller: ours to dial once."""

    lead_id: int
    campaign_id: int
    phone: str
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The ledger row written when an originate is sent (not final)."""

    call_id: str
    owner: str
    campaign_id: int
    lead_id: int
    phone: str
    trunk: str
    originated_at: datetime
    pacing_decision: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A not-final update of a ledger row: the phase facts recovery relies on after a crash."""

    call_id: str
    answered_at: datetime | None = None
    connected_at: datetime | None = None
    agent_number: str | None = None
    amd_status: str = ""
    live: bool | None = None


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """The one final ledger row of an originate."""

    call_id: str
    campaign_id: int
    lead_id: int
    result: CallResult
    ended_at: datetime
    answered_at: datetime | None = None
    connected_at: datetime | None = None
    agent_number: str | None = None
    ring_seconds: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    handoff_ms: float | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str = ""
    hangup_leg: str = ""  # "self": our call id's channel; "other": the ;2 half of a Local channel
    amd_status: str = ""
    amd_cause: str = ""
    recording_path: str = ""
    no_redial_hours: float | None = None  # abandoned: keep the lead away this long


@dataclass(frozen=True, slots=True)
class DispositionRecord:
    """What an agent entered in wrap-up (or the default), for a call and its lead."""

    call_id: str
    campaign_id: int
    lead_id: int
    agent_number: str
    code: str
    at: datetime
    wrap_seconds: float
    callback_at: datetime | None = None
    final: bool = False
    dnc: bool = False


@dataclass(frozen=True, slots=True)
class AgentLogRecord:
    """One line of the agent state log."""

    event_id: str
    agent_number: str
    state: str
    reason: str
    seat: str
    campaign_id: int | None
    call_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A ledger row left open by a previous run of this controller (restart recovery)."""

    call_id: str
    campaign_id: int
    lead_id: int
    answered: bool
    connected: bool
    live: bool | None
    agent_number: str | None = None


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The answer to an agent number + PIN: ok, or why not (``bad_pin``, ``locked``...)."""

    ok: bool
    code: str = "ok"
    agent_number: str = ""
    campaign_ids: tuple[int, ...] = ()


class Store(Protocol):
    """The record, as the engine and the FastAGI scripts use it."""

    async def running_campaigns(self) -> Sequence[CampaignConfig]:
        """Campaigns whose status is running."""
        ...

    async def campaign(self, key: str) -> CampaignConfig | None:
        """One campaign by id or name (any status)."""
        ...

    async def set_campaign_status(self, campaign_id: int, status: str) -> None:
        """Persist a campaign's status."""
        ...

    async def reserve_leads(self, campaign_id: int, count: int) -> Sequence[LeadTicket]:
        """Up to ``count`` dialable leads, reserved for this controller."""
        ...

    async def release_leads(self, lead_ids: Sequence[int]) -> None:
        """Give back reserved leads that were not dialled."""
        ...

    async def recheck(self, lead_id: int, phone: str) -> str | None:
        """None if the lead may still be dialled right now; otherwise why not (e.g. "dnc")."""
        ...

    async def live_answers(self, campaign_id: int) -> Sequence[tuple[float, bool]]:
        """The campaign's live answers over the last 30 days: (seconds ago, abandoned?) each,
        for the pacer's abandonment ledger after a (re)start."""
        ...

    def call_started(self, row: CallStarted) -> None:
        """Queue the opening ledger row (batched; never blocks)."""
        ...

    def call_progress(self, row: CallProgress) -> None:
        """Queue a phase update of an open ledger row."""
        ...

    def call_ended(self, row: CallOutcome) -> None:
        """Queue the final ledger row; the lead's status follows from it."""
        ...

    def disposition(self, row: DispositionRecord) -> None:
        """Queue a disposition (and its callback, if any)."""
        ...

    def agent_log(self, row: AgentLogRecord) -> None:
        """Queue one agent state log line."""
        ...

    async def open_calls(self) -> Sequence[OpenCall]:
        """Ledger rows this controller opened and never closed (a previous run died)."""
        ...

    async def check_pin(self, agent_number: str, pin: str) -> PinCheck:
        """Verify an agent's PIN, counting failures and locking out (the db's rules)."""
        ...

    async def agent_campaigns(self, agent_number: str) -> tuple[int, ...]:
        """The campaigns an agent is assigned to (adoption after a restart)."""
        ...

    async def save_agent_work(self, agent_number: str, work: str, campaign_id: int | None) -> None:
        """Keep an agent's work assignment (``queue.assign``); LookupError: no such agent."""
        ...

    async def agent_work(self) -> Mapping[str, tuple[str, int | None]]:
        """Kept work assignments other than the default: number -> (work, campaign id)."""
        ...

    async def flush(self) -> None:
        """Write everything queued so far."""
        ...


@dataclass(frozen=True, slots=True)
class AmiReply:
    """What an AMI action answered (success flag, message, list events)."""

    ok: bool
    message: str = ""
    events: tuple[Mapping[str, str], ...] = field(default_factory=tuple)


class AmiPort(Protocol):
    """The AMI client, as the engine uses it."""

    @property
    def connected(self) -> bool:
        """Whether the link is up and logged in."""
        ...

    async def send(self, action: str, headers: Sequence[tuple[str, str]]) -> AmiReply:
        """Send one action; raise on link trouble (see ``dialer.engine.effects``)."""
        ...
