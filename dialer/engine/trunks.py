"""Trunks: dial strings from templates with prefix rules, and per-trunk channel / CPS limits.

A trunk's limits are shared by both directions (issue 8).  Outbound calls take a channel when
launched and count in the calls-per-second window; an inbound call that arrives over the trunk
takes a channel for its whole life too, so the originate path sees fewer free channels.  Inbound
arrivals cannot be refused by rate (the carrier sent them), but each one counts in the same
one-second window, so outbound launches back off while callers are arriving.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from dialer.asterisk_conf.contract import CTX_INBOUND
from dialer.config import TrunkSettings

log = logging.getLogger("dialer.engine.trunks")

# ChannelState values of a channel *we* dial out on before it is answered (Down, Ringing): the
# trunk endpoint's context is its context too (trace 12), so those never count as inbound.
# An inbound call arrives in Ring (4) and is Up (6) once answered (trace 26).
_OUTBOUND_STATES = frozenset({"0", "5"})


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
    in_use: int = 0  # channels busy, both directions
    starts: deque[float] = field(default_factory=deque)
    inbound: int = 0  # of ``in_use``: inbound calls

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

    def arrive(self, now: float | None) -> None:
        """Count an inbound call on the trunk: a channel, and (``now`` given) a start this second.

        Never refused: the call is already there.  ``in_use`` may so pass ``max_channels``;
        ``room`` then stays 0 until enough calls end.  ``now=None`` adopts a call that arrived
        while we could not see it (only its channel counts).
        """
        self.in_use += 1
        self.inbound += 1
        if now is not None:
            self.starts.append(now)

    def leave(self) -> None:
        """An inbound call's channel released."""
        self.inbound = max(0, self.inbound - 1)
        self.end()


class Headers(Protocol):
    """An AMI event or list item: header lookup by name."""

    def get(self, key: str, /) -> str | None:
        """The header's value, or None."""


@dataclass(frozen=True, slots=True)
class InboundChannel:
    """An inbound call's channel on one of our trunks."""

    uniqueid: str
    channel: str
    trunk: str


def trunk_of_channel(channel: str, trunks: Iterable[TrunkSettings]) -> TrunkSettings | None:
    """The trunk a channel belongs to, from its name (``PJSIP/carrier-00000015`` -> carrier).

    Each trunk is rendered as a PJSIP endpoint named after it (pjsip.conf.j2), and Asterisk
    names a channel ``<tech>/<endpoint>-<sequence>``.  The endpoint in the trunk's dial template
    (``PJSIP/{number}@carrier``) is accepted too.
    """
    tech, sep, rest = channel.partition("/")
    if not sep or "-" not in rest:
        return None
    endpoint = rest.split(";", 1)[0].rsplit("-", 1)[0]
    trunks = tuple(trunks)
    for t in trunks:
        if t.name == endpoint:
            return t
    for t in trunks:
        ttech, _, resource = t.dial_template.partition("/")
        if ttech.lower() == tech.lower() and resource.rpartition("@")[2] == endpoint:
            return t
    return None


def inbound_channel(msg: Headers, trunks: Iterable[TrunkSettings]) -> InboundChannel | None:
    """The inbound call a Newchannel event (or CoreShowChannel item) shows, if it is one.

    Inbound calls from the carrier start in the trunk endpoint's context, ``dialer-inbound``
    (docs/dialplan.md).  So does a channel we originate through the trunk until it is answered
    (trace 12), but that one is Down or Ringing, and the caller also checks that its Uniqueid
    is none of our call ids.
    """
    if (msg.get("Context") or "") != CTX_INBOUND:
        return None
    if (msg.get("ChannelState") or "") in _OUTBOUND_STATES:
        return None
    uid = msg.get("Uniqueid") or ""
    channel = msg.get("Channel") or ""
    trunk = trunk_of_channel(channel, trunks)
    if not uid or trunk is None:
        if uid:
            log.info("inbound channel %s is on no configured trunk: not counted", channel)
        return None
    return InboundChannel(uid, channel, trunk.name)


@dataclass(slots=True)
class InboundTrunkCalls:
    """Inbound calls holding trunk channels, each released exactly once.

    Owned by the engine and used only from its task: ``arrived`` on the Newchannel, ``ended``
    on the Hangup, ``reconcile`` with a channel listing after the AMI link came back (calls
    that ended unseen are released, calls that arrived unseen are adopted).
    """

    gates: dict[str, TrunkGate]
    held: dict[str, InboundChannel] = field(default_factory=dict)
    since: dict[str, float] = field(default_factory=dict)  # uniqueid -> when counted

    def arrived(self, call: InboundChannel, now: float, *, adopted: bool = False) -> bool:
        """Count the call on its trunk (False if already counted or the trunk has no gate).

        ``adopted``: found in a listing, arrival time unknown: it takes a channel but is not
        counted in the calls-per-second window.
        """
        gate = self.gates.get(call.trunk)
        if gate is None or call.uniqueid in self.held:
            return False
        self.held[call.uniqueid] = call
        self.since[call.uniqueid] = now
        gate.arrive(None if adopted else now)
        return True

    def ended(self, uniqueid: str) -> bool:
        """Release the call's channel (False if it was not counted, or released already)."""
        call = self.held.pop(uniqueid, None)
        if call is None:
            return False
        self.since.pop(uniqueid, None)
        gate = self.gates.get(call.trunk)
        if gate is not None:
            gate.leave()
        return True

    def reconcile(
        self, present: Iterable[str], listed: Iterable[InboundChannel], asked: float, now: float
    ) -> int:
        """Match a channel listing asked for at ``asked``: release calls gone, adopt new ones.

        ``present`` is every Uniqueid in the listing; ``listed`` the inbound calls in it.  A
        call counted after ``asked`` may be missing from the listing only because it is newer:
        it stays.  Returns how many were released.
        """
        alive = frozenset(present)
        gone = [u for u in self.held if u not in alive and self.since.get(u, asked) <= asked]
        for uid in gone:
            self.ended(uid)
        for call in listed:
            if call.uniqueid not in self.held:
                self.arrived(call, now, adopted=True)
        return len(gone)
