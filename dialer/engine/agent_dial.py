"""Preview and manual dialling inside the single writer (issue 8): ``*3`` dials for one agent.

:class:`AgentDial` is owned by the :class:`~dialer.engine.core.Engine` (``engine.agent_dial``)
and only ever called from its task.  The pacer never launches for a ``preview``/``manual``
campaign; instead the agent asks, in two steps:

* ``agent.next``: the agent (READY) is reserved at once (RESERVE: the pacer of any campaign
  counts them as talking, no other call takes them) and one lead is taken from the hopper for
  the agent's campaign; the reply carries its number (the FastAGI script announces it in
  preview mode).  No lead: the agent is released (READY) and the reply says ``no_lead``.
* ``agent.dial``: the lead gets the last look (``Store.recheck``) and is launched through the
  normal path; the call carries the agent from the start, so the hand-off (``outbound/answered``)
  bridges to that agent only and no abandonment deadline races them.  Unanswered, busy or a
  machine: ``_finalize`` releases the agent (READY) as for any reserved call; the agent gone
  (logged out / line dropped) before the bridge: the call waits like any other (abandonment).
* Not answered (busy, no answer, congestion, invalid or failed): ``_finalize`` calls
  :meth:`AgentDial.ended`, which tells the agent why: AMI ``Setvar`` ``AGENT_STATE=READY`` and
  ``DIALER_NOTICE=<prompt>`` on their holding channel, then ``Redirect`` to
  ``dialer-agent-notice`` (docs/dialplan.md), which plays it and returns to the hold loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dialer.asterisk_conf.contract import AGENT_NOTICE_TARGET
from dialer.config import AsteriskSettings
from dialer.domain.agent import AgentEvent, AgentStatus
from dialer.domain.call import CallPhase
from dialer.domain.results import CallResult
from dialer.engine import commands as cmds
from dialer.engine.commands import Command, Reply
from dialer.engine.ports import LeadTicket

if TYPE_CHECKING:
    from dialer.engine.core import Engine

log = logging.getLogger("dialer.engine.agent_dial")

S = AgentStatus
# Campaign dial modes where the agent asks for each call (no pacer).
AGENT_DIALLED = ("preview", "manual")
NO_LEAD = cmds.NO_LEAD


def notice_prompt(result: CallResult, a: AsteriskSettings) -> str | None:
    """What an agent hears when the call they dialled ends with ``result`` (None: nothing)."""
    if result is CallResult.BUSY:
        return a.preview_busy_prompt
    if result is CallResult.NO_ANSWER:
        return a.preview_no_answer_prompt
    if result is CallResult.CONGESTION:
        return a.preview_congestion_prompt
    if result in (CallResult.INVALID_NUMBER, CallResult.REJECTED, CallResult.FAILED):
        return a.preview_failed_prompt
    return None  # answered (a person, a machine), or the AMI link is gone anyway


@dataclass(frozen=True, slots=True)
class NextLeadIn:
    """The hopper's answer to an agent's ``*3`` (effect result)."""

    agent: str
    campaign_id: int
    tickets: tuple[LeadTicket, ...]
    reply: asyncio.Future[Reply]
    error: str = ""


@dataclass(frozen=True, slots=True)
class AgentDialIn:
    """The last look at an agent's held lead came back: ``reason`` empty means dial."""

    agent: str
    campaign_id: int
    ticket: LeadTicket
    reason: str
    reply: asyncio.Future[Reply]


class AgentDial:
    """The agents' own dialling (preview/manual), applied by the engine's single task."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.held: dict[str, tuple[int, LeadTicket]] = {}  # agent -> lead taken, not dialled
        self.dialled: dict[str, str] = {}  # call id -> the agent it was dialled for

    # ------------------------------------------------------------------ commands

    def next(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        """``agent.next``: reserve the agent and take one lead (reply when the hopper answers)."""
        e = self.engine
        a, err = e._agent_for(cmd)
        if a is None:
            return err
        cid = int(a.campaign) if a.campaign.isdigit() else 0
        run = e.campaigns.get(cid)
        if run is None or run.config.dial_mode not in AGENT_DIALLED:
            return cmds.error(cmds.FAILED, f"campaign {a.campaign or '-'} is not preview/manual")
        if run.config.status != "running" or e.stopping:
            return cmds.error(cmds.FAILED, f"campaign {run.config.name} is not running")
        if a.status is not S.READY or a.agent_id in self.held:
            return cmds.error(cmds.ILLEGAL_TRANSITION, f"agent is {a.status.value}")
        e._agent_event(a.agent_id, AgentEvent.RESERVE, reason="next")
        agent_id = a.agent_id

        async def fetch() -> None:
            try:
                tickets = await e.store.reserve_leads(cid, 1)
                e.post(NextLeadIn(agent_id, cid, tuple(tickets), fut))
            except Exception as exc:  # the failure is an input, not a log line
                e.post(NextLeadIn(agent_id, cid, (), fut, error=f"{type(exc).__name__}: {exc}"))

        e._later(fetch)
        return None

    def dial(self, cmd: Command, fut: asyncio.Future[Reply]) -> Reply | None:
        """``agent.dial``: the last look at the held lead, then the launch (reply after)."""
        e = self.engine
        a, err = e._agent_for(cmd)
        if a is None:
            return err
        held = self.held.pop(a.agent_id, None)
        if held is None or a.status is not S.RESERVED or a.call_id:
            if held is not None:
                self._drop_lead(held[1])
            return cmds.error(cmds.ILLEGAL_TRANSITION, f"agent {a.agent_id} holds no lead")
        cid, ticket = held
        agent_id = a.agent_id

        async def recheck() -> None:
            try:
                reason = await e.store.recheck(ticket.lead_id, ticket.phone)
            except Exception as exc:
                reason = f"recheck failed: {type(exc).__name__}"
            e.post(AgentDialIn(agent_id, cid, ticket, reason or "", fut))

        e._later(recheck)
        return None

    # ------------------------------------------------------------------ inputs

    def apply(self, item: object) -> bool:
        """Apply an agent-dial input; False if ``item`` is not one."""
        if isinstance(item, NextLeadIn):
            self._on_next(item)
        elif isinstance(item, AgentDialIn):
            self._on_dial(item)
        else:
            return False
        return True

    def _waiting(self, agent_id: str) -> bool:
        a = self.engine.agents.get(agent_id)
        return a is not None and a.status is S.RESERVED and not a.call_id

    def _on_next(self, item: NextLeadIn) -> None:
        e = self.engine
        fresh = [t for t in item.tickets if t.lead_id not in e.leads_in_flight]
        e._release([t.lead_id for t in fresh[1:]])
        ticket = fresh[0] if fresh else None
        if not self._waiting(item.agent):
            if ticket is not None:
                e._release([ticket.lead_id])
            _answer(item.reply, cmds.error(cmds.ILLEGAL_TRANSITION, "agent no longer waiting"))
            return
        if ticket is None:
            e._agent_event(item.agent, AgentEvent.RELEASE)
            why = item.error or "no lead to dial now"
            _answer(item.reply, Reply(False, NO_LEAD, why, {"state": S.READY.value}))
            return
        e.leads_in_flight.add(ticket.lead_id)
        self.held[item.agent] = (item.campaign_id, ticket)
        run = e.campaigns.get(item.campaign_id)
        mode = run.config.dial_mode if run else ""
        _answer(
            item.reply,
            cmds.ok(
                f"lead {ticket.lead_id}",
                lead=ticket.lead_id,
                phone=ticket.phone,
                mode=mode,
                state=S.RESERVED.value,
            ),
        )

    def _on_dial(self, item: AgentDialIn) -> None:
        e = self.engine
        run = e.campaigns.get(item.campaign_id)
        reason = item.reason
        if not reason and (run is None or run.config.status != "running" or e.stopping):
            reason = "campaign no longer running"
        if not reason and not (e.ami_up and e.ami.connected):
            reason = "AMI link down"
        if not reason and not self._waiting(item.agent):
            reason = "agent no longer waiting"
        if reason or run is None:
            self._drop_lead(item.ticket)
            if self._waiting(item.agent):
                e._agent_event(item.agent, AgentEvent.RELEASE)
            _answer(item.reply, Reply(False, NO_LEAD, reason, {"state": self._state(item.agent)}))
            return
        gate = e.trunks.get(run.config.trunk) or e._default_gate(run.config.trunk)
        e._launch(run, item.ticket, gate, e.clock.now(), 1)
        call = next(
            (
                c
                for c in reversed(e.calls.values())
                if c.state.lead_id == item.ticket.lead_id
                and c.state.phase is not CallPhase.ENDED
                and not c.state.agent_id
            ),
            None,
        )
        if call is None:  # the launch did not happen: nothing rings for the agent
            self._drop_lead(item.ticket)
            e._agent_event(item.agent, AgentEvent.RELEASE)
            _answer(item.reply, Reply(False, NO_LEAD, "not launched", {"state": "READY"}))
            return
        # The call is this agent's from the start: _dispatch and the deadline leave it alone,
        # _offer bridges to them, _finalize releases them if it never connects.
        call_id = call.state.call_id
        self.dialled[call_id] = item.agent
        call.state = replace(call.state, agent_id=item.agent)
        call.reserved_perf = time.perf_counter()
        e.agents[item.agent] = replace(e.agents[item.agent], call_id=call_id)
        e.live.agent(item.agent, e._agent_view(e.agents[item.agent]))
        e.live.call(call_id, e._call_view(call))
        _answer(item.reply, cmds.ok(f"dialling {call_id}", call=call_id, state="RESERVED"))

    # ------------------------------------------------------------------ the engine's hooks

    def ended(self, call_id: str, result: CallResult) -> None:
        """A call ended (``_finalize``): if an agent dialled it and it was not answered, and
        they are READY and holding, tell them why (an inbound caller may have taken them)."""
        agent_id = self.dialled.pop(call_id, None)
        if agent_id is None:
            return
        prompt = notice_prompt(result, self.engine.settings.asterisk)
        a = self.engine.agents.get(agent_id)
        if prompt is None or a is None or a.status is not S.READY or not a.channel:
            return
        channel = a.channel
        self.engine._later(lambda: self._notice(agent_id, channel, prompt, result))

    async def _notice(self, agent_id: str, channel: str, prompt: str, result: CallResult) -> None:
        ami = self.engine.ami
        context, exten, priority = AGENT_NOTICE_TARGET
        try:
            for name, value in (("AGENT_STATE", S.READY.value), ("DIALER_NOTICE", prompt)):
                await ami.send(
                    "Setvar", [("Channel", channel), ("Variable", name), ("Value", value)]
                )
            # A caller or a live call may have taken the agent while the variables were set:
            # a Redirect then would pull their line out of that bridge.  Looked at last thing
            # (a read; the bridge can only follow an offer made after this).
            a = self.engine.agents.get(agent_id)
            if a is None or a.status is not S.READY or a.call_id or a.channel != channel:
                log.info("agent %s: %s notice dropped: taken meanwhile", agent_id, result.value)
                return
            reply = await ami.send(
                "Redirect",
                [
                    ("Channel", channel),
                    ("Context", context),
                    ("Exten", exten),
                    ("Priority", str(priority)),
                ],
            )
        except Exception as exc:  # the agent is READY either way; only the prompt is lost
            log.info("agent %s: %s notice not sent: %s", agent_id, result.value, exc)
            return
        if not reply.ok:
            log.info("agent %s: %s notice refused: %s", agent_id, result.value, reply.message)

    def drop(self, agent_id: str) -> None:
        """The agent left (logout, line gone): give back the lead they held, if any."""
        held = self.held.pop(agent_id, None)
        if held is not None:
            self._drop_lead(held[1])

    def _drop_lead(self, ticket: LeadTicket) -> None:
        self.engine.leads_in_flight.discard(ticket.lead_id)
        self.engine._release([ticket.lead_id])

    def _state(self, agent_id: str) -> str:
        a = self.engine.agents.get(agent_id)
        return a.status.value if a is not None else ""


def _answer(fut: asyncio.Future[Reply], reply: Reply) -> None:
    if not fut.done():
        fut.set_result(reply)
