"""The Asterisk side of FastAGI: the ``agi_*`` environment, command lines in, replies out.

Exact bytes follow the traces (``*.agi.sN.rx`` is what Asterisk sent): one ``key: value\\n`` line
per variable ending with an empty line [11, 21, 22]; every reply line ends with a bare ``\\n``;
520 is multi-line with un-prefixed usage lines [22]; ``HANGUP\\n`` arrives unsolicited after the
channel hung up [18, 22, 26]; 511 for commands not allowed on a dead channel [22, 31].
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

AGI_VERSION = "GIT-22-69535d4837"

ENV_ORDER = (
    "network",
    "network_script",
    "request",
    "channel",
    "language",
    "type",
    "uniqueid",
    "version",
    "callerid",
    "calleridname",
    "callingpres",
    "callingani2",
    "callington",
    "callingtns",
    "dnid",
    "rdnis",
    "context",
    "extension",
    "priority",
    "enhanced",
    "accountcode",
    "threadid",
)

INVALID = b"510 Invalid or unknown command\n"
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
HANGUP_LINE = b"HANGUP\n"

# `agi show commands`: what still works after the channel hung up [22].
DEAD_OK = frozenset(
    {
        "GET VARIABLE",
        "GET FULL VARIABLE",
        "SET VARIABLE",
        "EXEC",
        "NOOP",
        "VERBOSE",
        "DATABASE GET",
        "DATABASE PUT",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "ASYNCAGI BREAK",
        "GOSUB",
        "SET MUSIC",
    }
)

# Known commands (longest first when matching) and their 520 usage text where recorded.
COMMANDS = (
    "GET FULL VARIABLE",
    "GET VARIABLE",
    "SET VARIABLE",
    "GET DATA",
    "STREAM FILE",
    "CONTROL STREAM FILE",
    "GET OPTION",
    "WAIT FOR DIGIT",
    "CHANNEL STATUS",
    "SET CALLERID",
    "SET CONTEXT",
    "SET EXTENSION",
    "SET PRIORITY",
    "SET AUTOHANGUP",
    "SET MUSIC",
    "SAY DIGITS",
    "SAY NUMBER",
    "SAY ALPHA",
    "DATABASE GET",
    "DATABASE PUT",
    "DATABASE DEL",
    "DATABASE DELTREE",
    "RECORD FILE",
    "ASYNCAGI BREAK",
    "ANSWER",
    "HANGUP",
    "EXEC",
    "NOOP",
    "VERBOSE",
    "GOSUB",
)

USAGE = {
    "GET DATA": (
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
    ),
}


def usage_520(command: str) -> bytes:
    """The multi-line 520 reply for a command called with bad syntax [22]."""
    lines = USAGE.get(command, (f"Usage: {command}",))
    body = "".join(line + "\n" for line in lines)
    return (
        "520-Invalid command syntax.  Proper usage follows:\n" + body + "520 End of proper usage.\n"
    ).encode()


def result(value: object, extra: str | None = None) -> bytes:
    """``200 result=<value>`` with an optional ``(extra)`` or ``endpos=`` suffix."""
    tail = f" {extra}" if extra else ""
    return f"200 result={value}{tail}\n".encode()


@dataclass(frozen=True, slots=True)
class AgiUrl:
    """Where an ``AGI(agi://host:port/script?query)`` call goes."""

    host: str
    port: int
    script: str  # path + query, without the leading slash (agi_network_script)
    request: str  # the whole URL (agi_request)
    args: tuple[str, ...] = ()


def parse_agi_url(data: str) -> AgiUrl:
    """Parse an ``AGI()`` argument: ``agi://host[:port]/script?query[,arg1,arg2...]``."""
    url, *args = data.split(",")
    parts = urlsplit(url)
    script = parts.path.lstrip("/")
    if parts.query:
        script += "?" + parts.query
    return AgiUrl(parts.hostname or "127.0.0.1", parts.port or 4573, script, url, tuple(args))


def encode_env(env: dict[str, str], args: Iterable[str] = ()) -> bytes:
    """The environment block Asterisk sends first, in its order, ended by an empty line."""
    lines = [f"agi_{key}: {env.get(key, '')}\n" for key in ENV_ORDER]
    for i, arg in enumerate(args, 1):
        lines.append(f"agi_arg_{i}: {arg}\n")
    lines.append("\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def split_args(line: str) -> list[str]:
    """Split a command line like Asterisk's ``parse_args``: spaces, double quotes, backslashes."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    escaped = False
    started = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
            started = True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                out.append("".join(cur))
                cur = []
                started = False
        else:
            cur.append(ch)
            started = True
    if started:
        out.append("".join(cur))
    return out


def match_command(args: list[str]) -> tuple[str, list[str]] | None:
    """Find the command name (case-insensitive) at the start of ``args``; return it and the rest."""
    upper = [a.upper() for a in args]
    for name in COMMANDS:
        words = name.split(" ")
        if upper[: len(words)] == words:
            return name, args[len(words) :]
    return None
