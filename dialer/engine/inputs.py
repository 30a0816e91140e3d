"""Everything that enters the engine's one queue, as frozen dataclasses.

AMI events, FastAGI requests, CLI commands, pacer ticks and the results of effects all become
one of these and are applied, one at a time, by the engine's single task.  Items that expect an
answer carry an ``asyncio.Future`` the engine resolves (resolving a future never awaits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dialer.engine.commands import Command, Reply
from dialer.engine.ports import CampaignConfig, LeadTicket, OpenCall
from dialer.engine.trunks import InboundChannel
from dialer.protocol.ami import Message


@dataclass(frozen=True, slots=True)
class HandoffPlan:
    """What the customer's FastAGI session must do next."""

    action: str  # "bridge" | "abandon" | "hangup" | "message" | "need_amd" (read AMDSTATUS)
    agent: str = ""
    channel: str = ""  # the agent's full channel name (Bridge matches a prefix: trace 31)
    prompt: str = ""  # abandonment or answering-machine message
    deadline: float = 0.0  # engine clock: give up on this call's hand-off after this
    record_path: str = ""  # MixMonitor file when the campaign records


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """An event from the AMI link."""

    msg: Message


@dataclass(frozen=True, slots=True)
class AmiLink:
    """The AMI link went up (logged in) or down."""

    up: bool


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: pace, time out wrap-ups, publish counters."""


@dataclass(frozen=True, slots=True)
class CommandIn:
    """A command on the command path, with the future its reply goes to."""

    cmd: Command
    reply: asyncio.Future[Reply]


@dataclass(frozen=True, slots=True)
class LoginIn:
    """An agent whose PIN was accepted on a seat's nailed-up channel."""

    agent: str
    channel: str
    seat: str
    campaign_ids: tuple[int, ...]
    paused: bool
    reply: asyncio.Future[Reply]


@dataclass(frozen=True, slots=True)
class HandoffIn:
    """The answered customer's FastAGI session asks what to do (AMD verdict included)."""

    call_id: str
    channel: str
    amd_status: str
    amd_cause: str
    reply: asyncio.Future[HandoffPlan]


@dataclass(frozen=True, slots=True)
class BridgeResultIn:
    """``EXEC Bridge`` returned; BRIDGERESULT says how it went.

    On failure ``reply`` gets the next plan (another agent, or abandon).
    """

    call_id: str
    agent: str
    result: str
    reply: asyncio.Future[HandoffPlan] | None = None


@dataclass(frozen=True, slots=True)
class WrapupStartIn:
    """The agent's wrap-up FastAGI session started (the customer left the bridge)."""

    agent: str
    channel: str
    reply: asyncio.Future[Reply]


@dataclass(frozen=True, slots=True)
class LeadsIn:
    """Leads the hopper reserved for a campaign (effect result)."""

    campaign_id: int
    tickets: Sequence[LeadTicket]
    error: str = ""


@dataclass(frozen=True, slots=True)
class RecheckIn:
    """The last look before an Originate came back: ``reason`` empty means dial (effect result)."""

    campaign_id: int
    ticket: LeadTicket
    want: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OriginateIn:
    """How the Originate action went: accepted, refused, or unknown (link lost)."""

    call_id: str
    ok: bool
    message: str = ""
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class TimerIn:
    """A timer the engine set went off."""

    kind: str  # "deadline" | "finalize" | "stale"
    key: str


@dataclass(frozen=True, slots=True)
class ReconcileIn:
    """The channels Asterisk has now (CoreShowChannels), after a reconnect or on suspicion."""

    asked_at: float
    uniqueids: frozenset[str]
    channels: frozenset[str]
    ok: bool = True
    inbound: tuple[InboundChannel, ...] = ()  # inbound calls on our trunks in the listing
    inbound_only: bool = False  # a listing for the trunks' inbound calls only (first link-up)


@dataclass(frozen=True, slots=True)
class CampaignIn:
    """A campaign loaded (or gone) after a command; ``reply`` gets the command's answer."""

    key: str
    config: CampaignConfig | None
    status: str
    reply: asyncio.Future[Reply] | None = None


@dataclass(frozen=True, slots=True)
class HistoryIn:
    """A campaign's live answers of the last 30 days, for its pacer's abandonment ledger:
    (seconds ago, abandoned?) each; none when the record could not be read (said in the log)."""

    campaign_id: int
    answers: Sequence[tuple[float, bool]]


@dataclass(frozen=True, slots=True)
class RecoverIn:
    """Ledger rows a previous run left open (restart recovery)."""

    calls: Sequence[OpenCall]


@dataclass(frozen=True, slots=True)
class ActionDoneIn:
    """An AMI action requested by a command finished; pass its outcome to the waiting reply."""

    reply: asyncio.Future[Reply] | None
    ok: bool
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
    code: str = ""  # the reply's code; empty: "ok" or "failed" from ``ok``


@dataclass(frozen=True, slots=True)
class StopIn:
    """Stop launching, let calls finish for a grace period, then stop."""

    grace: float


@dataclass(frozen=True, slots=True)
class BarrierIn:
    """Resolved when applied: every input posted before it has been applied (tests, shutdown)."""

    reply: asyncio.Future[None]
