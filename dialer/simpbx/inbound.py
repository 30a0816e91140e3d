"""Simulated inbound callers: people who dial the office's DIDs (Poisson arrivals).

Each call arrives on the carrier trunk into ``dialer-inbound`` [26] and reaches the controller's
FastAGI ``ivr/main?did=``; the caller answers GET DATA prompts from the profile's DTMF choices,
waits for an agent up to their patience and talks once bridged.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from dialer.simpbx.model import plan_inbound

if TYPE_CHECKING:
    from dialer.simpbx.pbx import SimPbx


class InboundCallers:
    """Generates inbound calls at ``arrivals_per_hour`` for as long as the simulator runs."""

    def __init__(self, pbx: SimPbx, rng: random.Random) -> None:
        self.pbx = pbx
        self.rng = rng

    async def run(self) -> None:
        """Arrival loop (exponential gaps)."""
        ip = self.pbx.profile.inbound
        rate = ip.arrivals_per_hour / 3600.0
        if rate <= 0 or not ip.dids:
            return
        n = 0
        while True:
            await self.pbx.clock.sleep(self.rng.expovariate(rate))
            n += 1
            did = self.rng.choice(ip.dids)
            caller = ip.caller_prefix + f"{self.rng.randrange(10**8):08d}"
            plan = plan_inbound(self.pbx.profile, self.pbx.rng("inbound-call", n))
            self.pbx.inbound_call(did, caller, plan)
