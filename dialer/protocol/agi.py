"""FastAGI codec, sans-I/O: the request environment, commands out, replies in.

Wire facts this follows (../shared/asterisk/README.md, traces 11, 18, 22, 26, 28-34):

* Asterisk opens with ``agi_key: value`` lines ended by an empty line; every line ends with a
  bare ``\\n`` (``\\r\\n`` is accepted too).  ``agi_network_script`` carries the path *and* the
  query string (``edge?x=1``); arguments after the URL come as ``agi_arg_1`` ... (trace 22).
* Replies, one per command, in order:
  ``200 result=<r>[ (<data>)][ endpos=<n>]`` (``result=`` may be empty: ``200 result= (timeout)``),
  ``510 Invalid or unknown command``, ``511 Command Not Permitted on a dead channel ...``, and
  the multi-line ``520-Invalid command syntax.  Proper usage follows:`` + usage lines without a
  code + ``520 End of proper usage.`` (its lines may arrive in separate reads).
* ``HANGUP`` alone on a line is unsolicited: Asterisk sends it once when the channel hangs up,
  between replies (before the next reply, or while nothing is pending: traces 18, 22, 26).
* End of stream is the only other way a session ends; Asterisk never closes first (18, 26):
  :meth:`AgiReplyDecoder.eof` turns it into a hang-up notice.

Text is decoded as UTF-8 with ``surrogateescape`` (no byte is lost).  Every line is limited in
size, the environment as a whole too: a peer over a limit gets :class:`AgiProtocolError`, as
does a line that is no AGI reply at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"

DEFAULT_MAX_ENV_BYTES = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 64 * 1024
_MAX_USAGE_LINES = 1000


class AgiProtocolError(Exception):
    """The peer sent something that is not FastAGI (or exceeds a limit); drop the session.

    ``items`` holds the replies decoded from the same read before the fault.
    """

    def __init__(self, message: str, *, items: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.items: tuple[object, ...] = tuple(items)


# --------------------------------------------------------------------------- environment


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """A FastAGI request: the ``agi_*`` environment and what it says about the route."""

    env: Mapping[str, str]
    path: str
    params: Mapping[str, str]
    args: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        """``agi_channel``: the channel name ('' if absent)."""
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        """``agi_uniqueid``: the channel's Uniqueid (our ChannelId when we originated it)."""
        return self.env.get("agi_uniqueid", "")


def split_script(script: str) -> tuple[str, dict[str, str]]:
    """``agi_network_script`` -> (path without leading slash, query parameters).

    Repeated query keys keep the last value; blank values are kept.  ``%XX`` is decoded but a
    ``+`` stays a ``+``: Asterisk passes ``${EXTEN}`` as it is, and a DID such as ``+15551001``
    must not arrive as `` 15551001`` (seen on a real Asterisk 22).
    """
    path, _, query = script.partition("?")
    params: dict[str, str] = {}
    for part in query.split("&") if query else ():
        if part:
            key, _, value = part.partition("=")
            params[unquote(key)] = unquote(value)
    return path.strip("/"), params


def make_request(env: Mapping[str, str]) -> AgiRequest:
    """Build the request from a complete environment.

    ``params`` = the query string of ``agi_network_script`` plus ``arg1``..``argN`` from
    ``agi_arg_N`` (the arguments win on a name clash).
    """
    path, params = split_script(env.get("agi_network_script", ""))
    args: list[str] = []
    n = 1
    while f"agi_arg_{n}" in env:
        args.append(env[f"agi_arg_{n}"])
        params[f"arg{n}"] = env[f"agi_arg_{n}"]
        n += 1
    return AgiRequest(
        env=MappingProxyType(dict(env)),
        path=path,
        params=MappingProxyType(params),
        args=tuple(args),
    )


class AgiEnvReader:
    """Incremental reader of the environment block; feed bytes until it returns a request."""

    __slots__ = ("_buf", "_done", "_max")

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_ENV_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_bytes
        self._done = False

    def feed(self, data: bytes) -> tuple[AgiRequest, bytes] | None:
        """Add bytes; once the empty line is seen return (request, bytes after it)."""
        if self._done:
            raise AgiProtocolError("environment already complete (or refused)")
        buf = self._buf
        scan = max(len(buf) - 2, 0)
        buf += data
        end = _find_blank(buf, scan)
        if end is None:
            # Up to 2 bytes may be the start of the empty line: the same verdict as later.
            if len(buf) - 2 > self._max:
                self._refuse()
            return None
        head, after = end
        if head > self._max:
            self._refuse()
        self._done = True
        env = parse_env(bytes(buf[:head]))
        rest = bytes(buf[after:])
        buf.clear()
        return make_request(env), rest

    def _refuse(self) -> None:
        self._done = True
        self._buf.clear()
        raise AgiProtocolError(f"AGI environment exceeds {self._max} bytes")


def _find_blank(buf: bytearray, scan: int) -> tuple[int, int] | None:
    """(end of the last env line, start of what follows) for the first empty line, if any."""
    if scan == 0:
        # An empty environment: the very first line is empty.
        if buf.startswith(b"\n"):
            return 0, 1
        if buf.startswith(b"\r\n"):
            return 0, 2
    a = buf.find(b"\n\n", scan)
    b = buf.find(b"\n\r\n", scan)
    if a < 0 and b < 0:
        return None
    if b < 0 or (0 <= a < b):
        return a + 1, a + 2
    return b + 1, b + 3


def parse_env(block: bytes) -> dict[str, str]:
    """Parse ``agi_key: value`` lines (first value of a key wins; odd lines are ignored)."""
    env: dict[str, str] = {}
    for raw in block.split(b"\n"):
        line = raw.removesuffix(b"\r").decode(_ENCODING, _ERRORS)
        key, sep, value = line.partition(":")
        if not sep or not key:
            continue
        env.setdefault(key.strip(), value[1:] if value[:1] == " " else value)
    return env


# --------------------------------------------------------------------------- commands


_NEEDS_QUOTES = re.compile(r'[\s"\\]')


def quote_arg(arg: str) -> str:
    """Quote one command argument the way Asterisk's ``parse_args`` reads it back.

    Plain words go bare; empty text, whitespace, ``"`` or ``\\`` get double quotes with
    ``"`` and ``\\`` escaped by a backslash.  CR/LF would end the command: ValueError.
    """
    if "\n" in arg or "\r" in arg:
        raise ValueError(f"AGI argument must not contain CR or LF: {arg!r}")
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(command: str, *args: str) -> bytes:
    """One command line: the command words as given, each argument quoted, then ``\\n``."""
    if "\n" in command or "\r" in command:
        raise ValueError(f"AGI command must not contain CR or LF: {command!r}")
    parts = [command.strip(), *(quote_arg(a) for a in args)]
    return (" ".join(parts) + "\n").encode(_ENCODING, _ERRORS)


def encode_line(line: str) -> bytes:
    """A raw command line (already quoted by the caller) with its ``\\n``."""
    if "\n" in line or "\r" in line:
        raise ValueError(f"AGI command must not contain CR or LF: {line!r}")
    return (line + "\n").encode(_ENCODING, _ERRORS)


def parse_args(text: str) -> list[str]:
    """Split a command line into words like Asterisk does (quotes, backslash escapes).

    The inverse of :func:`quote_arg`; used by the simulator and by round-trip tests.
    """
    words: list[str] = []
    cur: list[str] = []
    in_word = quoted = escaped = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
            in_word = True
        elif ch == "\\":
            escaped = True
            in_word = True
        elif ch == '"':
            quoted = not quoted
            in_word = True
        elif ch in " \t" and not quoted:
            if in_word:
                words.append("".join(cur))
                cur = []
                in_word = False
        else:
            cur.append(ch)
            in_word = True
    if in_word:
        words.append("".join(cur))
    return words


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class AgiReply:
    """A ``200`` reply: ``result`` as sent (may be ''), ``data`` in parentheses, ``endpos``."""

    code: int
    result: str
    data: str | None = None
    endpos: int | None = None

    @property
    def result_int(self) -> int | None:
        """``result`` as an int, or None when it is not a number (e.g. empty on timeout)."""
        try:
            return int(self.result)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class AgiErrorReply:
    """A non-200 reply: 510, 511, 520 (``usage`` holds the usage text lines) or another code."""

    code: int
    message: str
    usage: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AgiHangupNotice:
    """The unsolicited ``HANGUP`` line: the channel hung up (the session stays open)."""


ReplyItem = AgiReply | AgiErrorReply | AgiHangupNotice

_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?", re.DOTALL)


def parse_reply_line(line: str) -> AgiReply | AgiErrorReply:
    """Parse one complete single-line reply (not HANGUP, not a 520 continuation)."""
    if len(line) < 3 or not line[:3].isdigit() or not line[:3].isascii():
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(line[:3])
    rest = line[4:] if len(line) > 3 and line[3] in " -" else None
    if rest is None and len(line) > 3:
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    if code == 200:
        m = _RESULT.fullmatch(rest or "")
        if m is None:
            raise AgiProtocolError(f"malformed AGI 200 reply: {line[:80]!r}")
        endpos = int(m.group(3)) if m.group(3) is not None else None
        return AgiReply(200, m.group(1), m.group(2), endpos)
    return AgiErrorReply(code, rest or "")


class AgiReplyDecoder:
    """Incremental decoder of what Asterisk sends after the environment."""

    __slots__ = ("_broken", "_buf", "_max", "_usage", "_usage_head")

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._broken = False
        self._buf = bytearray()
        self._max = max_line_bytes
        self._usage: list[str] | None = None  # inside a multi-line 520
        self._usage_head = ""

    def feed(self, data: bytes) -> list[ReplyItem]:
        """Add received bytes; return every reply item they complete, in order.

        A fault raises :class:`AgiProtocolError` (with the items before it) and is final.
        """
        if self._broken:
            raise AgiProtocolError("decoder used after a protocol error")
        buf = self._buf
        buf += data
        out: list[ReplyItem] = []
        start = 0
        try:
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                if nl - start > self._max:
                    raise AgiProtocolError(f"AGI line exceeds {self._max} bytes")
                raw = bytes(buf[start:nl]).removesuffix(b"\r")
                start = nl + 1
                item = self._line(raw.decode(_ENCODING, _ERRORS))
                if item is not None:
                    out.append(item)
            if len(buf) - start > self._max:
                raise AgiProtocolError(f"AGI line exceeds {self._max} bytes")
        except AgiProtocolError as exc:
            self._broken = True
            buf.clear()
            raise AgiProtocolError(str(exc), items=out) from None
        if start:
            del buf[:start]
        return out

    def _line(self, line: str) -> ReplyItem | None:
        usage = self._usage
        if usage is not None:
            if line.startswith("520 "):
                self._usage = None
                return AgiErrorReply(520, self._usage_head, tuple(usage))
            if len(usage) >= _MAX_USAGE_LINES:
                raise AgiProtocolError("AGI 520 usage text has too many lines")
            usage.append(line)
            return None
        if line == "HANGUP":
            return AgiHangupNotice()
        if line.startswith("520-"):
            self._usage = []
            self._usage_head = line[4:]
            return None
        if not line:
            return None  # a stray empty line carries nothing
        return parse_reply_line(line)

    def eof(self) -> list[ReplyItem]:
        """End of stream: a last line that lacked its newline, then a hang-up notice.

        Asterisk never closes a FastAGI socket first, so end of stream means the peer (or the
        link) is gone: the caller is as good as hung up.  A 520 block cut short is returned
        with the usage lines that did arrive.  The decoder is finished afterwards.
        """
        out: list[ReplyItem] = []
        if not self._broken:
            try:
                if self._buf:
                    out += self.feed(b"\n")
            except AgiProtocolError as exc:
                out += [i for i in exc.items if isinstance(i, AgiReply | AgiErrorReply)]
            if self._usage is not None:
                out.append(AgiErrorReply(520, self._usage_head, tuple(self._usage)))
                self._usage = None
        self._broken = True
        self._buf.clear()
        out.append(AgiHangupNotice())
        return out

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line (or 520 block) held back."""
        return len(self._buf) + (0 if self._usage is None else 1)
