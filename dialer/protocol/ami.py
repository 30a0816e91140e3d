"""Asterisk Manager Interface (AMI) codec, sans-I/O: bytes in, messages out; actions in, bytes out.

Wire facts this follows (see ../shared/asterisk/README.md, traces 01-10):

* The server opens with one banner line (``Asterisk Call Manager/11.0.0\\r\\n``) that is *not*
  followed by a blank line; the first real message comes right after it (trace 01).
* Every message is ``Key: value`` lines ended by a blank line.  Asterisk sends CRLF; we also
  accept bare LF, and we split on bytes before decoding anything.
* Keys are case-insensitive (``Privilege: Call`` vs ``call``; ``ActionID``), and some keys repeat
  (``Output`` per CLI line in trace 06, ``Variable`` in trace 08, ``ChanVariable``): headers are
  kept as an ordered list of pairs, never a plain dict.

Decoding policy for bytes that are not valid UTF-8: they are decoded with ``surrogateescape``,
so nothing is dropped and :func:`encode_headers` gives back the exact bytes.  For display
(``dialer ami decode``) such bytes are rendered as ``\\xNN`` escapes.

Lines without a colon (never seen from Asterisk 22, possible from older versions' raw command
output) are kept as a header whose key is the empty string and whose value is the whole line.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

MessageKind = Literal["response", "event", "action", "unknown"]

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class AmiProtocolError(Exception):
    """The peer sent bytes that cannot be AMI (or exceed a limit); the link must be dropped."""


@dataclass(frozen=True, slots=True)
class Banner:
    """The single greeting line a server sends on connect."""

    text: str

    @property
    def version(self) -> str:
        """The protocol version after the slash, e.g. ``11.0.0`` (empty if absent)."""
        return self.text.rpartition("/")[2] if "/" in self.text else ""


@dataclass(frozen=True, slots=True)
class Message:
    """One AMI message: an ordered tuple of ``(key, value)`` headers, keys case-insensitive."""

    headers: tuple[tuple[str, str], ...]
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, headers: Iterable[tuple[str, str]]) -> Message:
        """Build a message and its case-insensitive index of first values."""
        hdrs = tuple(headers)
        index: dict[str, str] = {}
        for key, value in hdrs:
            low = key.lower()
            if low not in index:
                index[low] = value
        return cls(hdrs, index)

    @property
    def kind(self) -> MessageKind:
        """What the first header says this is: response, event, action or unknown."""
        if not self.headers:
            return "unknown"
        first = self.headers[0][0].lower()
        if first == "response":
            return "response"
        if first == "event":
            return "event"
        if first == "action":
            return "action"
        return "unknown"

    @property
    def name(self) -> str:
        """The event name, the Response value or the Action name (per :attr:`kind`)."""
        return self.headers[0][1] if self.headers else ""

    @property
    def action_id(self) -> str | None:
        """The ActionID header, if any."""
        return self._index.get("actionid")

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (case-insensitive), or ``default``."""
        return self._index.get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        try:
            return self._index[key.lower()]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` in order (for repeated headers such as Output, Variable)."""
        low = key.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def is_event(self, name: str) -> bool:
        """True if this is the event ``name`` (case-insensitive)."""
        return self.kind == "event" and self.name.lower() == name.lower()

    def to_json(self) -> dict[str, object]:
        """The shape ``dialer ami decode`` prints: type, name, headers (display-safe text)."""
        return {
            "type": self.kind,
            "name": display(self.name),
            "headers": [[display(k), display(v)] for k, v in self.headers],
        }


Frame = Banner | Message


def display(text: str) -> str:
    """Render text decoded with surrogateescape for humans: invalid bytes become ``\\xNN``."""
    try:
        text.encode(_ENCODING)
    except UnicodeEncodeError:
        return text.encode(_ENCODING, _ERRORS).decode(_ENCODING, "backslashreplace")
    return text


def _parse_block(block: bytes) -> Message:
    headers: list[tuple[str, str]] = []
    for raw in block.split(b"\n"):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            continue
        line = raw.decode(_ENCODING, _ERRORS)
        key, sep, value = line.partition(":")
        if not sep:
            headers.append(("", line))
            continue
        if value.startswith(" "):
            value = value[1:]
        headers.append((key.strip(), value))
    return Message.build(headers)


class AmiDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole frames back.

    ``expect_banner`` is True on the client side (the server greets first) and False when
    decoding what a client sends (actions), as the simulator does.
    """

    __slots__ = ("_buf", "_closed", "_expect_banner", "_max", "_scan")

    def __init__(
        self, *, expect_banner: bool = True, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        self._buf = bytearray()
        self._scan = 0  # where the search for the next blank line resumes
        self._expect_banner = expect_banner
        self._max = max_message_bytes
        self._closed = False

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame they complete, in order."""
        if self._closed:
            raise AmiProtocolError("decoder used after a protocol error")
        buf = self._buf
        buf += data
        out: list[Frame] = []
        if self._expect_banner:
            nl = buf.find(b"\n")
            if nl < 0:
                self._check_size(len(buf))
                return out
            line = bytes(buf[:nl]).rstrip(b"\r").decode(_ENCODING, _ERRORS)
            del buf[: nl + 1]
            self._expect_banner = False
            self._scan = 0
            out.append(Banner(line))
        start = 0
        scan = self._scan
        n = len(buf)
        while True:
            # A blank line is "\n\n" or "\n\r\n"; find whichever comes first.
            a = buf.find(b"\n\r\n", scan)
            b = buf.find(b"\n\n", scan)
            if a < 0 and b < 0:
                break
            if b < 0 or (0 <= a < b):
                end, after = a, a + 3
            else:
                end, after = b, b + 2
            if end - start > self._max:
                self._fail(end - start)
            block = bytes(buf[start:end])
            msg = _parse_block(block)
            if msg.headers:
                out.append(msg)
            start = scan = after
        if start:
            del buf[:start]
        n = len(buf)
        # Resume the next search just before the end: a separator may straddle two reads.
        self._scan = max(n - 2, 0)
        self._check_size(n)
        return out

    def _check_size(self, size: int) -> None:
        if size > self._max:
            self._fail(size)

    def _fail(self, size: int) -> None:
        self._closed = True
        self._buf.clear()
        raise AmiProtocolError(
            f"AMI message exceeds {self._max} bytes without an end (at least {size} bytes)"
        )

    def close(self) -> Message | None:
        """End of stream: return a last message that lacked its blank line, if any.

        Asterisk always ends messages properly, so a partial message here means the link was cut
        mid-message; it is returned rather than dropped, for the caller to log or use.
        """
        self._closed = True
        rest = bytes(self._buf)
        self._buf.clear()
        if not rest.strip():
            return None
        msg = _parse_block(rest)
        return msg if msg.headers else None


# --------------------------------------------------------------------------- encoding

HeaderInput = Mapping[str, object] | Iterable[tuple[str, object]]

_counter = itertools.count(1)


def _clean(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        raise ValueError(f"AMI {what} must not contain CR or LF: {text!r}")
    return text


def _pairs(headers: HeaderInput | None) -> Iterator[tuple[str, str]]:
    if headers is None:
        return
    items: Iterable[tuple[str, object]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            # Multi-value headers (Variable, ChanVariable) repeat the key, one value per line.
            for item in value:
                yield key, _value_text(item)
        else:
            yield key, _value_text(value)


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    """Encode header pairs as one AMI message (CRLF lines, blank line at the end)."""
    parts = []
    for key, value in headers:
        parts.append(f"{_clean(key, 'header name')}: {_clean(value, 'header value')}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode(_ENCODING, _ERRORS)


def encode_action(
    action: str, headers: HeaderInput | None = None, action_id: str | None = None
) -> bytes:
    """Encode one action.  List or tuple values repeat the header (``Variable: A=1`` ...).

    ``Variable`` may also be given as a mapping ``{"A": "1"}``; it becomes ``A=1`` lines.
    A value may not contain CR or LF (that would inject headers): :class:`ValueError`.
    """
    pairs: list[tuple[str, str]] = [("Action", action)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    for key, value in _pairs(_expand_variables(headers)):
        pairs.append((key, value))
    return encode_headers(pairs)


def _expand_variables(headers: HeaderInput | None) -> HeaderInput | None:
    if headers is None:
        return None
    items: Iterable[tuple[str, object]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, object]] = []
    for key, value in items:
        if isinstance(value, Mapping):
            out.append((key, [f"{k}={v}" for k, v in value.items()]))
        else:
            out.append((key, value))
    return out


def encode_message(message: Message) -> bytes:
    """Encode a decoded message back to bytes (used by the simulator and round-trip tests)."""
    return encode_headers(message.headers)


def encode_banner(text: str = "Asterisk Call Manager/11.0.0") -> bytes:
    """The greeting a server sends first."""
    return (_clean(text, "banner") + "\r\n").encode(_ENCODING)


def next_action_id(prefix: str = "a") -> str:
    """A fresh ActionID, unique within this process."""
    return f"{prefix}{next(_counter)}"


def md5_key(challenge: str, secret: str) -> str:
    """The Login Key for ``AuthType: md5``: lowercase hex MD5 of challenge + secret (trace 03)."""
    return hashlib.md5((challenge + secret).encode(_ENCODING), usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------- captures


def decode_bytes(data: bytes, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[Frame]:
    """Decode a whole server-side capture held in memory."""
    dec = AmiDecoder(max_message_bytes=max_message_bytes)
    frames = dec.feed(data)
    last = dec.close()
    if last is not None:
        frames.append(last)
    return frames


def decode_capture(
    stream: BinaryIO, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, chunk: int = 1 << 16
) -> Iterator[dict[str, object]]:
    """Decode a raw capture file incrementally into ``dialer ami decode`` JSON objects.

    A capture that starts with ``Action:`` (what a client sent) is read without a banner.
    """
    first = stream.read(chunk)
    expect_banner = not first.lstrip().lower().startswith(b"action")
    dec = AmiDecoder(expect_banner=expect_banner, max_message_bytes=max_message_bytes)
    data = first
    while data:
        for frame in dec.feed(data):
            yield _frame_json(frame)
        data = stream.read(chunk)
    last = dec.close()
    if last is not None:
        yield _frame_json(last)


def _frame_json(frame: Frame) -> dict[str, object]:
    if isinstance(frame, Banner):
        return {"type": "banner", "name": display(frame.text), "headers": []}
    return frame.to_json()
