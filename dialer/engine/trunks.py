"""Trunks: dial strings from templates with prefix rules, and per-trunk channel / CPS limits."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from dialer.config import TrunkSettings


def dial_string(trunk: TrunkSettings, phone: str) -> str:
    """The Originate ``Channel`` for ``phone`` on ``trunk``.

    The number loses a leading ``+``, then ``strip_prefix`` if it starts with it, then gains
    ``add_prefix``; the template's ``{number}`` receives the result.
    """
    number = phone.strip().lstrip("+")
    if trunk.strip_prefix and number.startswith(trunk.strip_prefix):
        number = number[len(trunk.strip_prefix) :]
    number = trunk.add_prefix + number
    return trunk.dial_template.replace("{number}", number)


@dataclass(slots=True)
class TrunkGate:
    """How many channels a trunk has in use and how fast calls may start on it."""

    settings: TrunkSettings
    in_use: int = 0
    starts: deque[float] = field(default_factory=deque)

    def room(self, now: float) -> int:
        """Calls that may start now without passing the channel or calls-per-second limit."""
        while self.starts and self.starts[0] <= now - 1.0:
            self.starts.popleft()
        by_channels = self.settings.max_channels - self.in_use
        by_rate = int(self.settings.max_cps) - len(self.starts)
        if by_rate <= 0 and not self.starts:
            by_rate = 1  # a max_cps below 1 still lets one call through per second
        return max(0, min(by_channels, by_rate))

    def start(self, now: float) -> None:
        """Count one call starting now."""
        self.in_use += 1
        self.starts.append(now)

    def end(self) -> None:
        """Count one call's channel released."""
        self.in_use = max(0, self.in_use - 1)
