"""The asyncio AMI client (the codec is :mod:`dialer.protocol.ami`)."""

from dialer.ami.client import AmiClient, AmiResult, EventHandler
from dialer.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiError,
    AmiLinkLost,
    AmiNotConnected,
    AmiTimeout,
)
from dialer.protocol.ami import AmiProtocolError, Message

__all__ = [
    "AmiActionError",
    "AmiAuthError",
    "AmiClient",
    "AmiError",
    "AmiLinkLost",
    "AmiNotConnected",
    "AmiProtocolError",
    "AmiResult",
    "AmiTimeout",
    "EventHandler",
    "Message",
]
