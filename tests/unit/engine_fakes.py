"""Fakes for the engine's ports: an in-memory store and an AMI link that records actions."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialer.engine.inputs import AmiLink
from dialer.engine.ports import (
    AgentLogRecord,
    AmiReply,
    CallOutcome,
    CallProgress,
    CallStarted,
    CampaignConfig,
    DispositionRecord,
    LeadTicket,
    OpenCall,
    PinCheck,
)

if TYPE_CHECKING:
    from dialer.engine.core import Engine


@dataclass
class FakeStore:
    """The record in memory, with the same rules the real one keeps (one lead out at a time)."""

    campaigns_: dict[int, CampaignConfig] = field(default_factory=dict)
    leads: dict[int, str] = field(default_factory=dict)  # lead id -> phone, dialable
    reserved: set[int] = field(default_factory=set)
    started: list[CallStarted] = field(default_factory=list)
    progress: list[CallProgress] = field(default_factory=list)
    ended: list[CallOutcome] = field(default_factory=list)
    dispositions: list[DispositionRecord] = field(default_factory=list)
    agent_rows: list[AgentLogRecord] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    open: list[OpenCall] = field(default_factory=list)
    dnc: set[str] = field(default_factory=set)  # numbers put on DNC after they were reserved
    work: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # queue assign
    work_fails: bool = False
    known_agents: set[str] | None = None  # the record's agents (None: any number)
    # earlier live answers per campaign (seconds ago, abandoned?): the pacer's history
    history: dict[int, list[tuple[float, bool]]] = field(default_factory=dict)

    async def running_campaigns(self) -> Sequence[CampaignConfig]:
        return [c for c in self.campaigns_.values() if c.status == "running"]

    async def campaign(self, key: str) -> CampaignConfig | None:
        for c in self.campaigns_.values():
            if key in (str(c.id), c.name):
                return c
        return None

    async def set_campaign_status(self, campaign_id: int, status: str) -> None:
        from dataclasses import replace

        self.campaigns_[campaign_id] = replace(self.campaigns_[campaign_id], status=status)

    async def reserve_leads(self, campaign_id: int, count: int) -> Sequence[LeadTicket]:
        out = []
        for lead_id, phone in self.leads.items():
            if len(out) >= count:
                break
            if lead_id in self.reserved:
                continue
            self.reserved.add(lead_id)
            out.append(LeadTicket(lead_id, campaign_id, phone))
        return out

    async def release_leads(self, lead_ids: Sequence[int]) -> None:
        self.reserved.difference_update(lead_ids)

    async def live_answers(self, campaign_id: int) -> Sequence[tuple[float, bool]]:
        return list(self.history.get(campaign_id, ()))

    async def recheck(self, lead_id: int, phone: str) -> str | None:
        if phone in self.dnc:
            return "dnc"
        return None if lead_id in self.reserved else "not_reserved"

    def call_started(self, row: CallStarted) -> None:
        self.started.append(row)

    def call_progress(self, row: CallProgress) -> None:
        self.progress.append(row)

    def call_ended(self, row: CallOutcome) -> None:
        self.ended.append(row)
        self.leads.pop(row.lead_id, None)
        self.reserved.discard(row.lead_id)

    def disposition(self, row: DispositionRecord) -> None:
        self.dispositions.append(row)

    def agent_log(self, row: AgentLogRecord) -> None:
        self.agent_rows.append(row)

    async def open_calls(self) -> Sequence[OpenCall]:
        return list(self.open)

    async def check_pin(self, agent_number: str, pin: str) -> PinCheck:
        ok = self.pins.get(agent_number) == pin
        return PinCheck(ok, "ok" if ok else "bad_pin", agent_number)

    async def agent_campaigns(self, agent_number: str) -> tuple[int, ...]:
        return (1,)

    async def save_agent_work(self, agent_number: str, work: str, campaign_id: int | None) -> None:
        if self.work_fails:
            raise OSError("record unreachable")
        if self.known_agents is not None and agent_number not in self.known_agents:
            raise LookupError(f"no agent {agent_number} in the record")
        self.work[agent_number] = (work, campaign_id)

    async def agent_work(self) -> dict[str, tuple[str, int | None]]:
        return dict(self.work)

    async def flush(self) -> None:
        return None


@dataclass
class FakeAmi:
    """Records every action; answers Success unless told otherwise."""

    connected: bool = True
    actions: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    channels: list[dict[str, str]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, action: str, headers: Sequence[tuple[str, str]]) -> AmiReply:
        self.actions.append((action, list(headers)))
        if action in self.fail:
            return AmiReply(False, "Originate failed")
        if action == "CoreShowChannels":
            return AmiReply(True, "Channels will follow", tuple(self.channels))
        return AmiReply(True, "ok")

    def originates(self) -> list[dict[str, str]]:
        out = []
        for name, headers in self.actions:
            if name == "Originate":
                d: dict[str, str] = {}
                for k, v in headers:
                    if k == "Variable":
                        key, _, val = v.partition("=")
                        d["var:" + key] = val
                    else:
                        d[k] = v
                out.append(d)
        return out


@asynccontextmanager
async def running(engine: Engine, store: FakeStore) -> AsyncIterator[Engine]:
    """The engine's task, with the store's campaigns added and the AMI link up; stopped after."""
    task = asyncio.create_task(engine.run())
    for config in store.campaigns_.values():
        engine.add_campaign(config)
    engine.post(AmiLink(True))
    try:
        yield engine
    finally:
        await engine.stop(grace=0)
        await asyncio.wait_for(task, 5)
