"""FastAGI ``outbound/answered``: the answered customer, after AMD, handed to an agent at once.

Per docs/dialplan.md and traces 18, 28, 30, 31: read AMDSTATUS/AMDCAUSE, ask the engine for a
plan, ``EXEC Bridge <agent channel>,hF(dialer-agent-wrapup^s^1)``, then read BRIDGERESULT
(``EXEC Bridge`` answers ``200 result=0`` even for a vanished agent); try the next agent while
time remains; otherwise the abandonment message and hang-up.  The socket is always closed at
the end (the server does it when the handler returns): Asterisk never closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dialer.agi.errors import AgiError
from dialer.agi.server import AgiRouter, AgiSession
from dialer.engine.core import Engine
from dialer.engine.inputs import BridgeResultIn, HandoffIn, HandoffPlan

log = logging.getLogger("dialer.agi.outbound")

WRAPUP_TARGET = "dialer-agent-wrapup^s^1"
# Bridge options: h = the agent (called party) may end the customer's leg with the features.conf
# disconnect code (*0) and keep the line (trace 30); F = the agent goes on to wrap-up.
BRIDGE_OPTIONS = f"hF({WRAPUP_TARGET})"


@dataclass(frozen=True, slots=True)
class OutboundScripts:
    """The outbound routes, bound to one engine."""

    engine: Engine

    def register(self, router: AgiRouter) -> None:
        """Route the answered customer's path."""
        router.add("outbound/answered", self.answered)

    async def answered(self, session: AgiSession) -> None:
        """The hand-off (see the module docstring)."""
        engine = self.engine
        call_id = session.params.get("call") or session.uniqueid
        # The engine usually knows the AMD verdict already (VarSet/UserEvent on AMI, which come
        # first): ask at once and save two round trips on the 2-second clock.
        plan: HandoffPlan = await engine.ask(
            lambda f: HandoffIn(call_id, session.channel, "", "", f)
        )
        if plan.action == "need_amd":
            try:
                amd = await session.get_variable("AMDSTATUS") or "-"
                cause = await session.get_variable("AMDCAUSE") or ""
            except AgiError:
                amd, cause = "-", ""
            plan = await engine.ask(lambda f: HandoffIn(call_id, session.channel, amd, cause, f))
        try:
            await self._follow(session, call_id, plan)
        except AgiError as exc:
            # The customer (or the connection) went away mid-way; the engine learns the rest
            # from the AMI events (Hangup) and settles the call and the agent.
            log.info("call %s: FastAGI session ended early: %s", call_id, exc)

    async def _follow(self, session: AgiSession, call_id: str, plan: HandoffPlan) -> None:
        engine = self.engine
        while plan.action == "bridge":
            if plan.record_path:
                await session.exec("MixMonitor", plan.record_path, "b")
            await session.exec("Bridge", plan.channel, BRIDGE_OPTIONS)
            result = (await session.get_variable("BRIDGERESULT") or "FAILURE").upper()
            plan = await engine.ask(_bridge_result(call_id, plan.agent, result))
        if plan.action == "abandon":
            await session.exec("Playback", plan.prompt)
        elif plan.action == "message":
            # AMD does not hear the beep: wait for the greeting to go silent, then speak.
            await session.exec("WaitForSilence", "1500", "1", "10")
            await session.exec("Playback", plan.prompt)
        await session.hangup()


def _bridge_result(
    call_id: str, agent: str, result: str
) -> Callable[[asyncio.Future[HandoffPlan]], BridgeResultIn]:
    """An input builder for ``Engine.ask`` (binds the loop's values now, not later)."""

    def make(fut: asyncio.Future[HandoffPlan]) -> BridgeResultIn:
        return BridgeResultIn(call_id, agent, result, fut)

    return make
