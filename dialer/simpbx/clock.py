"""The simulator's one time source: real monotonic time scaled by a speed factor.

Every duration in the simulator (ring time, AMD, talk, wrap-up, login delays) is expressed in
simulated seconds and goes through :class:`SimClock`, so ``speed=60`` plays an hour in a minute
and tests can inject their own time source.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class SimClock:
    """Simulated time = (source() - start) * speed; sleeps are divided by speed."""

    __slots__ = ("_epoch0", "_source", "_start", "speed")

    def __init__(
        self,
        speed: float = 1.0,
        *,
        source: Callable[[], float] = time.monotonic,
        epoch: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._source = source
        self._start = source()
        self._epoch0 = epoch()

    def now(self) -> float:
        """Simulated seconds since the clock was made."""
        return (self._source() - self._start) * self.speed

    def epoch(self) -> float:
        """A Unix time for ``Timestamp`` headers: the start's wall time plus simulated time."""
        return self._epoch0 + self.now()

    def real(self, sim_seconds: float) -> float:
        """How many real seconds a simulated duration takes."""
        return max(sim_seconds, 0.0) / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for a simulated duration (0 or less just yields)."""
        await asyncio.sleep(self.real(sim_seconds))
