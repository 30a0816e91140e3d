"""Commands on the engine's one command path, and their replies.

Every action a person can take (an agent on the softphone, a supervisor at the CLI, later an
agent screen in a browser) becomes a :class:`Command` submitted to the engine with
``await engine.submit(cmd)``; the single writer applies it and answers with a :class:`Reply`.
Replies carry a stable machine-readable ``code`` so that callers (the CLI, the Redis command
bus, tests) never parse messages.

Command names and their arguments::

    agent.pause(agent, reason)        agent.unpause(agent)          agent.logout(agent)
    agent.disposition(agent, code)
    queue.assign(agent, [campaign], [work], [priority])   (at least one of the three)
    agent.next(agent)  agent.dial(agent)   (preview/manual: take a lead, then dial it)
    campaign.start(campaign)  campaign.pause(campaign)  campaign.stop(campaign)
    campaign.reload(campaign)         queue.pause(queue)  queue.resume(queue)
    status()                          monitor(agent, mode, to)

``agent`` is the agent number (a string, as typed on the phone); ``campaign`` the campaign id
or name (``queue.assign`` also accepts it as ``target``, its older name); ``work`` one of
blended, inbound_only, outbound_only and ``priority`` one of inbound, outbound (blended agents:
which comes first; see :mod:`dialer.domain.work`); ``mode`` one of listen, whisper, barge;
``to`` the supervisor endpoint (``sup01``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# The full list of command names, with the arguments each one requires.
COMMAND_ARGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "agent.pause": ("agent",),
        "agent.unpause": ("agent",),
        "agent.logout": ("agent",),
        "agent.disposition": ("agent", "code"),
        "agent.next": ("agent",),
        "agent.dial": ("agent",),
        "campaign.start": ("campaign",),
        "campaign.pause": ("campaign",),
        "campaign.stop": ("campaign",),
        "campaign.reload": ("campaign",),
        "queue.pause": ("queue",),
        "queue.resume": ("queue",),
        "queue.assign": ("agent",),
        "status": (),
        "monitor": ("agent", "mode", "to"),
    }
)

MONITOR_MODES = ("listen", "whisper", "barge")

# Stable error codes.  Callers switch on these; never rename one.
OK = "ok"
UNKNOWN_COMMAND = "unknown_command"
BAD_ARGUMENTS = "bad_arguments"
UNKNOWN_AGENT = "unknown_agent"
UNKNOWN_CAMPAIGN = "unknown_campaign"
UNKNOWN_QUEUE = "unknown_queue"
UNKNOWN_DISPOSITION = "unknown_disposition"
ILLEGAL_TRANSITION = "illegal_transition"
NOT_LOGGED_IN = "not_logged_in"
NOT_CONNECTED = "not_connected"
ENGINE_STOPPED = "engine_stopped"
TIMEOUT = "timeout"
FAILED = "failed"
NO_LEAD = "no_lead"  # agent.next / agent.dial: nothing to dial for the agent now

ERROR_CODES = (
    UNKNOWN_COMMAND,
    BAD_ARGUMENTS,
    UNKNOWN_AGENT,
    UNKNOWN_CAMPAIGN,
    UNKNOWN_QUEUE,
    UNKNOWN_DISPOSITION,
    ILLEGAL_TRANSITION,
    NOT_LOGGED_IN,
    NOT_CONNECTED,
    ENGINE_STOPPED,
    TIMEOUT,
    FAILED,
    NO_LEAD,
)


@dataclass(frozen=True, slots=True)
class Command:
    """One request on the engine's command path: a name, its arguments, who asked."""

    name: str
    args: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    actor: str = "cli"

    def to_json(self) -> dict[str, Any]:
        """Plain data for the Redis command bus."""
        return {"name": self.name, "args": dict(self.args), "actor": self.actor}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Command:
        """The inverse of :meth:`to_json`; unknown keys are ignored."""
        args = data.get("args") or {}
        if not isinstance(args, Mapping):
            args = {}
        return cls(str(data.get("name", "")), dict(args), str(data.get("actor", "unknown")))


@dataclass(frozen=True, slots=True)
class Reply:
    """The engine's answer to a command: ``ok`` plus a stable ``code`` and a human message."""

    ok: bool
    code: str
    message: str
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the Redis command bus."""
        return {"ok": self.ok, "code": self.code, "message": self.message, "data": dict(self.data)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        """The inverse of :meth:`to_json`."""
        payload = data.get("data") or {}
        return cls(
            bool(data.get("ok")),
            str(data.get("code", FAILED)),
            str(data.get("message", "")),
            dict(payload) if isinstance(payload, Mapping) else {},
        )


def ok(message: str = "done", **data: Any) -> Reply:
    """A successful reply."""
    return Reply(True, OK, message, MappingProxyType(dict(data)) if data else _EMPTY)


def error(code: str, message: str, **data: Any) -> Reply:
    """A failed reply with a stable ``code``."""
    return Reply(False, code, message, MappingProxyType(dict(data)) if data else _EMPTY)


def validate(cmd: Command) -> Reply | None:
    """Check a command's name and required arguments; ``None`` when it is well-formed."""
    required = COMMAND_ARGS.get(cmd.name)
    if required is None:
        return error(UNKNOWN_COMMAND, f"unknown command {cmd.name!r}")
    missing = [name for name in required if cmd.args.get(name) in (None, "")]
    if missing:
        return error(BAD_ARGUMENTS, f"{cmd.name}: missing {', '.join(missing)}")
    if cmd.name == "monitor" and cmd.args.get("mode") not in MONITOR_MODES:
        return error(BAD_ARGUMENTS, f"monitor: mode must be one of {', '.join(MONITOR_MODES)}")
    return None
