"""Simulated agents: people at softphones who log in, hold, take calls, wrap up and pause.

An agent dials the login extension from their seat (context ``dialer-seat``), types their agent
number and PIN at the controller's ``GET DATA`` prompts, then holds in ``dialer-agent-loop``
(``WaitExten``) and presses codes (*1 pause, *2 ready, *9 log out) [28, 34]; in wrap-up they
type a disposition and ``#`` [28]; during a call the disconnect code (*0) ends the customer's
leg when the Bridge allowed it [30]; logging out is hanging up or *9.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from dialer.simpbx.channels import Bridge, Channel
from dialer.simpbx.model import draw, pick

if TYPE_CHECKING:
    from dialer.simpbx.pbx import SimAgentSpec, SimPbx

LOGIN_RETRY_SECONDS = 10.0
CONTROLLER_DOWN_RETRY_SECONDS = 30.0
MAX_LOGIN_TRIES = 3


class SimAgent:
    """One agent's behaviour, driven by the profile's ``[agents]`` section."""

    def __init__(self, pbx: SimPbx, spec: SimAgentSpec, rng: random.Random) -> None:
        self.pbx = pbx
        self.spec = spec
        self.rng = rng
        ap = pbx.profile.agents
        self.absent = rng.random() < ap.absent_share
        self.slow = rng.random() < ap.slow_share
        self.wrong_pin_first = rng.random() < ap.wrong_pin_share
        self.ch: Channel | None = None
        self.status = "offline"  # offline, absent, logging_in, ready, paused, talking, wrapup
        self.pin_tries = 0
        self.calls = 0
        self.dispositions: list[str] = []
        self.changed = asyncio.Event()
        self.logins = 0
        self.last_login = ""  # ok, refused or down

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Shift: log in (spread), work with breaks, log out at the end of the shift."""
        ap = self.pbx.profile.agents
        if self.absent:
            self.status = "absent"
            return
        await self.pbx.clock.sleep(self.rng.uniform(0.0, ap.login_spread))
        refused = 0
        while True:
            if await self.login():
                break
            if self.last_login == "refused":
                refused += 1
                if refused >= MAX_LOGIN_TRIES:
                    self.status = "offline"
                    return
                await self.pbx.clock.sleep(LOGIN_RETRY_SECONDS)
            else:  # the controller is not there yet (ss-noservice): try again later
                await self.pbx.clock.sleep(CONTROLLER_DOWN_RETRY_SECONDS)
        started = self.pbx.clock.now()
        while self.ch is not None and not self.ch.dead:
            if ap.break_every > 0:
                work = self.rng.expovariate(1.0 / ap.break_every)
            else:
                work = 10 * 365 * 86400.0
            if ap.shift > 0:
                work = min(work, max(ap.shift - (self.pbx.clock.now() - started), 0.0))
            if not await self._sleep_while_up(work):
                return
            if ap.shift > 0 and self.pbx.clock.now() - started >= ap.shift:
                await self.logout()
                return
            await self.take_break()

    async def login(self) -> bool:
        """Dial the login extension; True once holding in the agent loop.

        ``last_login`` tells why not: ``refused`` (wrong number/PIN) or ``down`` (no FastAGI).
        """
        self.status = "logging_in"
        self.logins += 1
        ch = self.pbx.seat_call(self)
        self.ch = ch
        while not ch.destroyed:
            if ch.context == "dialer-agent-loop":
                self.last_login = "ok"
                return True
            await self._changed()
        self.ch = None
        self.status = "offline"
        self.last_login = "down" if ch.variables.get("AGISTATUS") == "FAILURE" else "refused"
        return False

    async def logout(self) -> None:
        """End of shift: *9 from the hold loop, or hang up the softphone [34]."""
        ch = self.ch
        if ch is None or ch.dead:
            return
        by_code = self.rng.random() < self.pbx.profile.agents.logout_by_code
        await self._until_idle()
        if ch.dead:
            return
        if by_code:
            await self.pbx.press(ch, self.pbx.profile.asterisk.logout_code)
            while not ch.destroyed:
                await self._changed()
        else:
            self.pbx.remote_hangup(ch, 16)
        self.status = "offline"

    async def take_break(self) -> None:
        """*1 when idle, a break, then *2."""
        ch = self.ch
        if ch is None:
            return
        await self._until_idle()
        if ch.dead:
            return
        await self.pbx.press(ch, self.pbx.profile.asterisk.pause_code)
        self.pbx.stats_counter["agent_breaks"] += 1
        await self._sleep_while_up(draw(self.pbx.profile.agents.break_length, self.rng))
        if ch.dead:
            return
        await self._until_idle(paused_ok=True)
        if not ch.dead:
            await self.pbx.press(ch, self.pbx.profile.asterisk.unpause_code)

    async def hang_up(self) -> None:
        """Hang up the softphone now (tests, demo)."""
        if self.ch is not None:
            self.pbx.remote_hangup(self.ch, 16)

    async def press(self, digits: str) -> bool:
        """Press keys on the softphone now (tests, demo)."""
        if self.ch is None:
            return False
        return await self.pbx.press(self.ch, digits)

    # ------------------------------------------------------------------ waiting helpers

    async def _changed(self) -> None:
        self.changed.clear()
        try:
            await asyncio.wait_for(self.changed.wait(), self.pbx.clock.real(5.0))
        except TimeoutError:
            pass

    async def _sleep_while_up(self, seconds: float) -> bool:
        ch = self.ch
        if ch is None:
            return False
        try:
            await asyncio.wait_for(ch.hup.wait(), self.pbx.clock.real(seconds))
        except TimeoutError:
            return True
        return False

    async def _until_idle(self, paused_ok: bool = False) -> None:
        ch = self.ch
        while ch is not None and not ch.dead:
            if ch.in_waitexten and ch.bridge is None and ch.mailbox.empty():
                return
            await self._changed()

    # ------------------------------------------------------------------ hooks from the PBX

    def accepts_calls(self) -> bool:
        """Is the softphone free to answer an Originate to its seat?"""
        return self.ch is None and not self.absent

    def on_answered(self, ch: Channel) -> None:
        """An Originate to the seat was answered: that is now the agent's line."""
        ch.role = "agent"
        self.ch = ch
        self.status = "logging_in"
        self.changed.set()

    def on_step(self, ch: Channel, context: str, app: str) -> None:
        """The agent's channel moved in the dialplan (Newexten): track the agent's status."""
        if context == "dialer-agent-loop" and app == "WaitExten":
            state = self.pbx.getvar(ch, "AGENT_STATE") or "READY"
            self.status = "paused" if state == "PAUSED" else "ready"
        elif context == "dialer-agent-wrapup":
            self.status = "wrapup"
        self.changed.set()

    def on_bridged(self, ch: Channel, bridge: Bridge) -> None:
        """A customer was bridged to this agent."""
        self.calls += 1
        self.status = "talking"
        self.changed.set()

    def on_unbridged(self, ch: Channel, bridge: Bridge) -> None:
        """The call ended (wrap-up follows when F() says so)."""
        self.status = "wrapup"
        self.changed.set()

    def on_gone(self, ch: Channel) -> None:
        """The agent's channel hung up."""
        if ch is self.ch:
            self.ch = None
            self.status = "offline"
        self.changed.set()

    def dtmf_for(self, ch: Channel, prompt: str) -> tuple[str, float]:
        """What the agent types at a GET DATA prompt (login, PIN, disposition) and when."""
        ap = self.pbx.profile.agents
        low = prompt.lower()
        if ch.context == "dialer-agent-wrapup":
            code = pick(ap.dispositions, self.rng) if ap.dispositions else "1"
            self.dispositions.append(code)
            wrap = draw(ap.wrapup, self.rng) * (ap.slow_factor if self.slow else 1.0)
            return code + "#", wrap
        if "user" in low or ("agent" in low and "pass" not in low):
            return self.spec.agent_number + "#", 1.5
        if "pass" in low or "pin" in low:
            self.pin_tries += 1
            if self.wrong_pin_first and self.pin_tries == 1:
                return "0000#" if self.spec.pin != "0000" else "1111#", 2.0
            return self.spec.pin + "#", 2.0
        return "1#", 1.0
