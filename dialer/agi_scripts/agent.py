"""FastAGI scripts for agents on softphones: login, pause, unpause, next, logout, wrap-up.

Each script is thin: it talks to the channel (GET DATA, SET VARIABLE, prompts) and turns what the
agent did into one input on the engine's command path; the engine decides (docs/dialplan.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dialer.agi.errors import AgiError
from dialer.agi.server import AgiRouter, AgiSession
from dialer.engine.commands import NO_LEAD, UNKNOWN_DISPOSITION, Command
from dialer.engine.core import Engine
from dialer.engine.inputs import LoginIn, WrapupStartIn
from dialer.engine.ports import PinCheck, Store

log = logging.getLogger("dialer.agi.agent")

LOGIN_TRIES = 3
DIGITS_TIMEOUT_MS = 10000
MAX_DIGITS = 6
# Causes that end the login at once: more tries could not help.
FINAL_REFUSALS = ("locked", "disabled", "no_pin")
# Preview/manual (*3): what the agent hears before the number, and when there is none.
PREVIEW_PROMPT = "calling"
NO_LEAD_PROMPT = "vm-nomore"


@dataclass(frozen=True, slots=True)
class AgentScripts:
    """The agent routes, bound to one engine and one store."""

    engine: Engine
    store: Store

    def register(self, router: AgiRouter) -> None:
        """Route every agent path of the dialplan contract."""
        router.add("agent/login", self.login)
        router.add("agent/pause", self.pause)
        router.add("agent/unpause", self.unpause)
        router.add("agent/next", self.next_lead)
        router.add("agent/logout", self.logout)
        router.add("agent/wrapup", self.wrapup)

    async def login(self, session: AgiSession) -> None:
        """GET DATA agent number and PIN (up to 3 tries); on success the line stays nailed up."""
        seat = session.params.get("seat", "")
        check = PinCheck(False, "no_entry")
        number = ""
        for _ in range(LOGIN_TRIES):
            number = await session.get_data("agent-user", DIGITS_TIMEOUT_MS, MAX_DIGITS)
            pin = await session.get_data("agent-pass", DIGITS_TIMEOUT_MS, MAX_DIGITS)
            if not number or not pin:
                check = PinCheck(False, "no_entry", number)
            else:
                check = await self.store.check_pin(number, pin)
            if check.ok or check.code in FINAL_REFUSALS:
                break
            await session.stream_file("agent-incorrect")
        if not check.ok:
            # Never log the PIN; the number and the reason are enough to investigate.
            log.info("login refused at seat %s for agent %r: %s", seat, number, check.code)
            await session.set_variable("AGENT_STATE", "LOGGED_OUT")
            return
        reply = await self.engine.ask(
            lambda f: LoginIn(number, session.channel, seat, check.campaign_ids, False, f)
        )
        if not reply.ok:
            await session.set_variable("AGENT_STATE", "LOGGED_OUT")
            return
        await session.set_variable("AGENTID", number)
        await session.set_variable("AGENT_STATE", str(reply.data.get("state", "READY")))
        await session.stream_file("agent-loginok")

    async def _code(self, session: AgiSession, name: str, **args: str) -> bool:
        agent = session.params.get("agent", "")
        reply = await self.engine.submit(Command(name, {"agent": agent, **args}, actor="phone"))
        if reply.ok:
            state = str(reply.data.get("state", ""))
            if state:
                await session.set_variable("AGENT_STATE", state)
        else:
            log.info("%s for agent %s refused: %s", name, agent, reply.code)
            await session.stream_file("beeperr")
        return reply.ok

    async def pause(self, session: AgiSession) -> None:
        """``*1``: pause (reason: phone)."""
        await self._code(session, "agent.pause", reason="phone")

    async def unpause(self, session: AgiSession) -> None:
        """``*2``: ready again."""
        await self._code(session, "agent.unpause")

    async def logout(self, session: AgiSession) -> None:
        """``*9``: log out; the dialplan hangs the line up afterwards."""
        await self._code(session, "agent.logout")

    async def next_lead(self, session: AgiSession) -> None:
        """``*3``: take the next lead for this agent (preview: hear its number), then dial it."""
        agent = session.params.get("agent", "")
        engine = self.engine
        taken = await engine.submit(Command("agent.next", {"agent": agent}, actor="phone"))
        if not taken.ok:
            log.info("agent.next for agent %s: %s", agent, taken.code)
            await self._after_refusal(session, taken.code)
            return
        await session.set_variable("AGENT_STATE", "RESERVED")
        try:
            if taken.data.get("mode") == "preview":
                # Preview: the agent hears whom they are about to call, before the dial.
                await session.stream_file(PREVIEW_PROMPT)
                await session.command(f'SAY DIGITS {_digits(str(taken.data.get("phone")))} ""')
        except AgiError:
            pass  # the line dropped: the logout (Hangup) gives the lead back
        dialled = await engine.submit(Command("agent.dial", {"agent": agent}, actor="phone"))
        if not dialled.ok:
            log.info("agent.dial for agent %s: %s", agent, dialled.code)
            await self._after_refusal(session, dialled.code)
            return
        # The agent goes back to the hold loop; the answered customer is bridged to this line.
        await session.set_variable("AGENT_STATE", "RESERVED")

    async def _after_refusal(self, session: AgiSession, code: str) -> None:
        if session.closed:
            return
        if code == NO_LEAD:
            await session.set_variable("AGENT_STATE", "READY")
            await session.stream_file(NO_LEAD_PROMPT)
        else:
            await session.stream_file("beeperr")

    async def wrapup(self, session: AgiSession) -> None:
        """After the customer left: disposition by ``<code>#``, confirmed; default on timeout."""
        agent = session.params.get("agent", "")
        engine = self.engine
        start = await engine.ask(lambda f: WrapupStartIn(agent, session.channel, f))
        if not start.ok:
            return
        seconds = float(start.data.get("wrapup_seconds", 30.0))
        ends = engine.clock.now() + seconds
        code = ""
        try:
            while (left := ends - engine.clock.now()) > 0:
                digits = await session.get_data("beep", max(1, int(left * 1000)), 3)
                if not digits:
                    break
                reply = await engine.submit(
                    Command("agent.disposition", {"agent": agent, "code": digits}, actor="phone")
                )
                if reply.ok:
                    code = digits
                    break
                if reply.code != UNKNOWN_DISPOSITION:
                    return  # settled elsewhere (the CLI, a timeout): nothing more to do here
                await session.stream_file("invalid")
        except AgiError:
            pass  # the line dropped: the engine settles the wrap-up on the hang-up
        if code:
            await session.set_variable("DISPOSITION", code)
            await session.stream_file("auth-thankyou")
            return
        reply = await engine.submit(
            Command("agent.disposition", {"agent": agent, "code": "default"}, actor="phone")
        )
        if reply.ok and not session.closed:
            await session.set_variable("DISPOSITION", "default")


def _digits(phone: str) -> str:
    """Only the digits of a number (SAY DIGITS takes nothing else)."""
    return "".join(ch for ch in phone if ch.isdigit()) or "0"
