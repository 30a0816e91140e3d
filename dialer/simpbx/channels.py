"""Channels, bridges and the event bus of the simulator: the state Asterisk would hold.

Header shapes and orders copy the recorded Asterisk 22 events (../shared/asterisk/traces):
the channel snapshot block of Newchannel/Newstate/Hangup..., the ``Dest`` block of DialBegin,
``Privilege: <class>,all`` plus ``Timestamp`` on unsolicited events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dialer.simpbx.clock import SimClock

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}

Header = tuple[str, str]


@dataclass(eq=False, slots=True)
class Bridge:
    """A basic two-party bridge made by Bridge() or the AMI Bridge action."""

    uniqueid: str
    members: list[Channel] = field(default_factory=list)
    done: asyncio.Future[str] | None = None
    after: dict[str, tuple[str, str, int] | None] = field(default_factory=dict)
    caller: Channel | None = None  # the channel that ran Bridge(): BRIDGERESULT goes there

    def headers(self, count: int) -> list[Header]:
        """The bridge block of BridgeCreate/Enter/Leave/Destroy [18, 28]."""
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(count)),
            ("BridgeVideoSourceMode", "none"),
        ]


@dataclass(eq=False, slots=True)
class Channel:
    """One Asterisk channel and what the simulator needs to drive it."""

    name: str
    uniqueid: str
    linkedid: str
    tech: str  # "PJSIP" or "Local"
    endpoint: str  # PJSIP endpoint, or "exten@context" for Local
    created: float
    role: str = "customer"  # customer, agent, inbound, supervisor, other
    state: int = 0
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    context: str = ""
    exten: str = "s"
    priority: int = 1
    app: str = ""
    appdata: str = ""
    dnid: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    dead: bool = False  # soft hangup requested: media gone, dialplan/AGI winding down
    destroyed: bool = False
    hangup_cause: int = 16
    tech_cause: int | None = None
    hup: asyncio.Event = field(default_factory=asyncio.Event)
    mailbox: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    in_waitexten: bool = False
    bridge: Bridge | None = None
    bridged: asyncio.Event = field(default_factory=asyncio.Event)
    dtmf_features: str = ""
    monitoring: bool = False
    music_on_hold: bool = False
    was_bridged: bool = False  # a bridge leaves hangupcause 16 behind [30 vs 21]
    peer: Channel | None = None  # the other half of a Local channel
    half: int = 0  # 1 or 2 for Local halves
    owner: Any = None  # SimAgent / party plan holder answering GET DATA
    plan: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    spying_on: Channel | None = None
    pbx_task: asyncio.Task[Any] | None = None
    far_gone: bool = False  # a Local ;1 whose far end left: SoftHangupRequest before Hangup [32]

    @property
    def type(self) -> str:
        """``agi_type`` / Status ``Type``: the technology."""
        return self.tech

    def snapshot(self, prefix: str = "") -> list[Header]:
        """The channel block every channel event carries, optionally prefixed (Dest, Spyer...)."""
        p = prefix
        return [
            (f"{p}Channel", self.name),
            (f"{p}ChannelState", str(self.state)),
            (f"{p}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{p}CallerIDNum", self.cid_num),
            (f"{p}CallerIDName", self.cid_name),
            (f"{p}ConnectedLineNum", self.conn_num),
            (f"{p}ConnectedLineName", self.conn_name),
            (f"{p}Language", "en"),
            (f"{p}AccountCode", ""),
            (f"{p}Context", self.context),
            (f"{p}Exten", self.exten),
            (f"{p}Priority", str(self.priority)),
            (f"{p}Uniqueid", self.uniqueid),
            (f"{p}Linkedid", self.linkedid),
        ]


# Which class (manager.conf read=) each event belongs to [04: EventMask filtering].
EVENT_CLASS = {
    "Newexten": "dialplan",
    "VarSet": "dialplan",
    "AGIExecStart": "agi",
    "AGIExecEnd": "agi",
    "DTMFBegin": "dtmf",
    "DTMFEnd": "dtmf",
    "UserEvent": "user",
    "FullyBooted": "system",
    "Shutdown": "system",
    "SuccessfulAuth": "security",
    "RTCPSent": "reporting",
}


def fast_encode(headers: list[Header]) -> bytes:
    """Encode an event built by the simulator; falls back to the codec's checks if needed.

    The codec's :func:`encode_headers` validates every header on its own; events are built
    from the simulator's state and sent to every session, so the check is done once on the
    joined text (no CR, and exactly one LF per header line).
    """
    text = "".join([f"{k}: {v}\r\n" for k, v in headers])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        from dialer.protocol.ami import encode_headers

        return encode_headers(headers)  # raises ValueError naming the bad header
    return (text + "\r\n").encode("utf-8", "surrogateescape")


class EventSink:
    """Something that receives encoded events (an AMI session)."""

    def wants(self, cls: str) -> bool:  # pragma: no cover - interface
        """True if this sink takes events of class ``cls`` now."""
        raise NotImplementedError

    def send(self, data: bytes) -> None:  # pragma: no cover - interface
        """Queue bytes for the peer."""
        raise NotImplementedError


class EventBus:
    """Builds each event once and hands its bytes to every session that wants its class."""

    def __init__(self, clock: SimClock, encode: Callable[[list[Header]], bytes]) -> None:
        self.clock = clock
        self.sinks: list[EventSink] = []
        self.count = 0
        self.by_name: dict[str, int] = {}
        self._encode = encode
        self.listeners: list[Callable[[str, list[Header]], None]] = []

    def emit(self, name: str, headers: Iterable[Header], *, cls: str | None = None) -> None:
        """Send ``Event: name`` with ``Privilege`` and ``Timestamp`` to interested sessions."""
        klass = cls or EVENT_CLASS.get(name, "call")
        self.count += 1
        self.by_name[name] = self.by_name.get(name, 0) + 1
        targets = [s for s in self.sinks if s.wants(klass)]
        if not targets and not self.listeners:
            return
        hdrs: list[Header] = [
            ("Event", name),
            ("Privilege", f"{klass},all"),
            ("Timestamp", f"{self.clock.epoch():.6f}"),
        ]
        hdrs.extend(headers)
        for listener in self.listeners:
            listener(name, hdrs)
        if targets:
            data = self._encode(hdrs)
            for sink in targets:
                sink.send(data)
