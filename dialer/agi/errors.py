"""Errors of the FastAGI server's sessions; every one is an :class:`AgiError`."""

from __future__ import annotations


class AgiError(Exception):
    """Base of every FastAGI session error."""


class AgiCommandError(AgiError):
    """Asterisk refused a command: 510 (unknown), 520 (bad syntax; ``usage``), other codes."""

    def __init__(self, command: str, code: int, message: str, usage: tuple[str, ...] = ()) -> None:
        self.command = command
        self.code = code
        self.message = message
        self.usage = usage
        text = f"AGI {command.split(' ', 1)[0] or '(empty)'} -> {code} {message}"
        if usage:
            text += " | " + " / ".join(usage)
        super().__init__(text)


class AgiDeadChannel(AgiCommandError):
    """511: the channel has hung up and this command needs a live one (trace 22)."""


class AgiHangup(AgiError):
    """The FastAGI connection is gone (end of stream): nothing more can be sent."""


class AgiTimeout(AgiError):
    """No reply within the command timeout; the late reply, if any, is discarded."""
