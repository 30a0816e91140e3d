"""Redis connections for live state and the command bus, with credentials kept out of text."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit


class LiveError(Exception):
    """A live-state or bus problem, phrased as one line with no credentials in it."""


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_user(url: str) -> str | None:
    """The user name in the URL, if it names one (``redis://alice:pw@host``)."""
    try:
        user = urlsplit(url).username
    except ValueError:
        return None
    return unquote(user) if user else None


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password, and the URL itself, replaced by masked forms."""
    out = text.replace(url, mask_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password) if password else None}:
        if secret:
            out = out.replace(secret, "***")
    return out


def open_redis(url: str, *, connect_timeout: float = 2.0) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` (decoded strings); nothing is sent until used."""
    if not url:
        raise LiveError("redis: no url configured (set redis.url or DIALER_REDIS_URL)")
    import redis.asyncio as aioredis

    try:
        return aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise LiveError(f"redis: bad url {mask_url(url)}: {scrub(str(exc), url)}") from None


def describe_error(exc: BaseException, url: str) -> str:
    """One line about a Redis failure, naming the masked URL, never the password."""
    import redis.exceptions as rexc

    where = mask_url(url)
    if isinstance(exc, rexc.AuthenticationError):
        what = "authentication failed (check the user and password)"
    elif isinstance(exc, rexc.NoPermissionError):
        what = f"permission denied by the ACL ({scrub(str(exc), url)})"
    elif isinstance(exc, rexc.ConnectionError | OSError):
        what = f"cannot connect ({scrub(str(exc), url)})"
    else:
        what = f"{type(exc).__name__}: {scrub(str(exc), url)}"
    return f"redis at {where}: {what}"


async def whoami(redis: Any) -> str:
    """This connection's Redis ACL user (``ACL WHOAMI``): the supervisor's identity."""
    name = await redis.execute_command("ACL", "WHOAMI")
    return name.decode() if isinstance(name, bytes) else str(name)


def reraise_swallowed_cancel() -> None:
    """Raise CancelledError if this task was cancelled but the last await returned normally.

    redis-py 8.1 sometimes swallows the cancellation of a blocking command (a cancelled
    ``XREAD BLOCK`` returns as if it had timed out, in about a quarter of the cases measured
    here), so a loop around it would run on forever; loops call this after each command.
    """
    import asyncio

    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
