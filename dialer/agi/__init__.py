"""The asyncio FastAGI server (the codec is :mod:`dialer.protocol.agi`)."""

from dialer.agi.errors import AgiCommandError, AgiDeadChannel, AgiError, AgiHangup, AgiTimeout
from dialer.agi.server import AgiHandler, AgiRouter, AgiServer, AgiSession
from dialer.protocol.agi import AgiProtocolError, AgiReply, AgiRequest

__all__ = [
    "AgiCommandError",
    "AgiDeadChannel",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiRequest",
    "AgiRouter",
    "AgiServer",
    "AgiSession",
    "AgiTimeout",
]
