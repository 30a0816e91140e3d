"""Errors of the asyncio AMI client; every one is an :class:`AmiError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialer.ami.client import AmiResult


class AmiError(Exception):
    """Base of every AMI client error."""


class AmiAuthError(AmiError):
    """Asterisk refused the login (wrong user, secret or MD5 key); retrying will not help."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``; ``message`` is its Message text."""

    def __init__(self, action: str, result: AmiResult) -> None:
        self.action = action
        self.result = result
        self.response = result.response
        self.message = result.message
        super().__init__(f"AMI {action} failed: {self.message or '(no message)'}")


class AmiTimeout(AmiError):
    """No answer within the timeout (the action may still run on Asterisk)."""


class AmiLinkLost(AmiError):
    """The link went down while the action was pending; it is never re-sent: reconcile."""


class AmiNotConnected(AmiError):
    """No logged-in AMI link right now; nothing was sent."""
