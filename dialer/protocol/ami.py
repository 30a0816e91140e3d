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

Header keys are kept verbatim (only lookups ignore case); one space after the colon is part
of the separator, any further spaces belong to the value.  Lines without a colon (never seen
from Asterisk 22, possible from older versions' raw command output) are kept as a header whose
key is the empty string and whose value is the whole line.  Extra blank lines between messages
are skipped.  A message larger than the size limit raises :class:`AmiProtocolError`; the
decoder gives the same frames (and the same error) however the bytes are split into reads.

Action tracking (:class:`ActionTracker`) is sans-I/O too: it matches responses to actions and
gathers EventLists, while every event is still delivered as an event (see its docstring).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

MessageKind = Literal["response", "event", "action", "unknown"]
_KINDS: dict[str, MessageKind] = {"response": "response", "event": "event", "action": "action"}

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class AmiProtocolError(Exception):
    """The peer sent bytes that cannot be AMI (or exceed a limit); the link must be dropped.

    ``frames`` holds what was decoded from the same read before the fault, so nothing that
    arrived intact is lost.
    """

    def __init__(self, message: str, *, frames: Sequence[Frame] = ()) -> None:
        super().__init__(message)
        self.frames: tuple[Frame, ...] = tuple(frames)


@dataclass(frozen=True, slots=True)
class Banner:
    """The single greeting line a server sends on connect."""

    text: str

    @property
    def version(self) -> str:
        """The protocol version after the slash, e.g. ``11.0.0`` (empty if absent)."""
        return self.text.rpartition("/")[2] if "/" in self.text else ""


class Message:
    """One AMI message: an ordered tuple of ``(key, value)`` headers, keys case-insensitive.

    Read-only: every public attribute is a property without a setter, and there is no
    ``__dict__``.  A decoded message keeps the text it came from and splits it into headers
    only when asked: most events are routed on their name and ActionID alone, and splitting
    every line of every message would cost the decoder most of its throughput
    (``dialer bench ami``).  The name, kind and single-header lookups on ASCII text are
    answered from the text directly, with exactly the same result as from the split headers
    (a property test holds both paths to that).
    """

    # Private caches are plain slots (fast stores in the decoder's hot loop); nothing outside
    # this module writes them.
    __slots__ = ("_eol", "_headers", "_index", "_kind", "_low", "_name", "_raw")

    _headers: tuple[tuple[str, str], ...] | None
    _raw: str | None
    _eol: str
    _index: dict[str, str] | None
    _low: str | None
    _kind: MessageKind | None
    _name: str

    def __init__(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._headers = tuple(headers)
        self._raw = None
        self._eol = "\n"
        self._index = None
        self._low = None
        self._kind = None
        self._name = ""

    @classmethod
    def build(cls, headers: Iterable[tuple[str, str]]) -> Message:
        """Build a message from ``(key, value)`` pairs."""
        return cls(headers)

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Every header as ``(key, value)`` in wire order; repeated keys kept."""
        hdrs = self._headers
        if hdrs is None:
            assert self._raw is not None
            hdrs = self._headers = _split_headers(self._raw.split(self._eol))
        return hdrs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.headers == other.headers

    def __hash__(self) -> int:
        return hash(self.headers)

    def __repr__(self) -> str:
        return f"Message(headers={self.headers!r})"

    def __reduce__(self) -> tuple[type[Message], tuple[tuple[tuple[str, str], ...]]]:
        return (Message, (self.headers,))

    def _idx(self) -> dict[str, str]:
        index = self._index
        if index is None:
            index = {}
            for key, value in self.headers:
                index.setdefault(key.lower(), value)
            self._index = index
        return index

    def _first(self) -> MessageKind:
        """Classify on the first line (cached); returns the kind, sets the name."""
        raw = self._raw
        if raw is None:
            hdrs = self.headers
            key, value = hdrs[0] if hdrs else ("", "")
        else:
            end = raw.find(self._eol)
            key, value = _header(raw if end < 0 else raw[:end])
        kind = self._kind = _KINDS.get(key.lower(), "unknown")
        self._name = value
        return kind

    @property
    def kind(self) -> MessageKind:
        """What the first header says this is: response, event, action or unknown."""
        kind = self._kind
        return self._first() if kind is None else kind

    @property
    def name(self) -> str:
        """The event name, the Response value or the Action name (per :attr:`kind`)."""
        if self._kind is None:
            self._first()
        return self._name

    @property
    def action_id(self) -> str | None:
        """The ActionID header, if any."""
        low = self._low
        if low is None or self._index is not None:
            return self._idx().get("actionid")
        return self._find(low, "actionid:", None)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (case-insensitive), or ``default``."""
        low = self._low
        if low is None or self._index is not None or not key:
            # "" is the key of lines without a colon: only the index knows those.
            return self._idx().get(key.lower(), default)
        if ":" in key or "\n" in key:
            return default  # no parsed key holds a colon or spans lines
        return self._find(low, key.lower() + ":", default)

    def _find(self, low: str, needle: str, default: str | None) -> str | None:
        """First ``needle`` (``key:``, lower case) at a line start of ``low``; its value."""
        # ASCII text only (the decoder gives ``low`` only then): lower-casing keeps offsets.
        eol = self._eol
        if low.startswith(needle):
            pos = len(needle)
        else:
            pos = low.find(eol + needle)
            if pos < 0:
                return default
            pos += len(eol) + len(needle)
        raw = self._raw
        assert raw is not None
        end = raw.find(eol, pos)
        value = raw[pos:] if end < 0 else raw[pos:end]
        return value[1:] if value[:1] == " " else value

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

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


def _header(line: str) -> tuple[str, str]:
    """``Key: value`` -> (key, value): the key verbatim, one space after the colon dropped.

    A line without a colon (never seen from Asterisk 22) becomes ``("", line)``.
    """
    key, sep, value = line.partition(":")
    if not sep:
        return ("", line)
    return (key, value[1:] if value[:1] == " " else value)


def _split_headers(lines: list[str]) -> tuple[tuple[str, str], ...]:
    """Every line as ``(key, value)``, exactly as :func:`_header` would split it."""
    # Fast path for what Asterisk always sends, "Key: value" on every line: one C-level split
    # per line and no Python call.  It is only taken when it cannot differ from _header: every
    # line has ": " and no key holds a colon (else the first colon was not followed by a space).
    try:
        pairs = tuple([(k, v) for k, v in [line.split(": ", 1) for line in lines]])
    except ValueError:  # a line without ": "
        return tuple([_header(line) for line in lines])
    if ":" in "".join([k for k, _ in pairs]):
        return tuple([_header(line) for line in lines])
    return pairs


def _messages(raw: bytes, out: list[Frame]) -> None:
    """Append the messages in ``raw`` (complete messages, ending with a blank line) to ``out``."""
    text = raw.decode(_ENCODING, _ERRORS)
    if text.count("\n") == text.count("\r\n"):
        eol = "\r\n"  # what Asterisk sends: split as is, no copy to normalise line ends
    else:
        # Mixed or bare LF: CRLF -> LF makes every blank line "\\n\\n"; a CR that is not
        # before LF is data and stays.
        text = text.replace("\r\n", "\n")
        eol = "\n"
    sep = eol + eol
    new = Message.__new__
    blocks = text.split(sep)
    if text.isascii():
        # One lower() for the whole read; split the same way, it lines up block for block.
        lows: list[str | None] = list(text.lower().split(sep))
    else:
        lows = [None] * len(blocks)
    for block, low in zip(blocks, lows, strict=True):
        if not block:
            continue
        if block.startswith(eol):  # extra blank lines between messages
            rest = block
            while rest.startswith(eol):
                rest = rest[len(eol) :]
            if low is not None:
                low = low[len(block) - len(rest) :]
            block = rest
        if block:
            msg = new(Message)
            msg._raw = block
            msg._eol = eol
            msg._low = low
            msg._headers = msg._index = msg._kind = None
            out.append(msg)


_SEPARATOR = re.compile(rb"\n\r?\n")


class AmiDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole frames back.

    ``expect_banner`` is True on the client side (the server greets first) and False when
    decoding what a client sends (actions), as the simulator does.

    A message is the bytes between two blank lines (``\\n\\n`` or ``\\n\\r\\n``); one whose
    size exceeds ``max_message_bytes`` raises :class:`AmiProtocolError` whose ``frames``
    holds the frames completed before it, so the result does not depend on how the bytes
    were split into reads.  Empty messages (extra blank lines) are skipped.
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
            raise AmiProtocolError("decoder used after a protocol error or close")
        buf = self._buf
        buf += data
        out: list[Frame] = []
        if self._expect_banner and not self._take_banner(out):
            return out
        # Only the last blank line matters: everything before it is complete messages.
        scan = self._scan
        a = buf.rfind(b"\n\r\n", scan)
        b = buf.rfind(b"\n\n", scan)
        end = max(a + 3 if a >= 0 else -1, b + 2 if b >= 0 else -1)
        if end < 0:
            self._scan = max(len(buf) - 2, 0)
            self._check_tail(out)
            return out
        raw = bytes(buf[:end])
        del buf[:end]
        self._scan = max(len(buf) - 2, 0)
        if end > self._max:
            self._check_regions(raw, out)
        _messages(raw, out)
        self._check_tail(out)
        return out

    def _take_banner(self, out: list[Frame]) -> bool:
        buf = self._buf
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > self._max:
                self._fail(len(buf), out)
            return False
        if nl > self._max:
            self._fail(nl, out)
        line = bytes(buf[:nl]).rstrip(b"\r").decode(_ENCODING, _ERRORS)
        del buf[: nl + 1]
        self._expect_banner = False
        self._scan = 0
        out.append(Banner(line))
        return True

    def _check_tail(self, out: list[Frame]) -> None:
        # The unfinished message will be at least this big (up to 2 bytes of the tail may be
        # the start of its blank line), so failing now gives the same answer as failing later.
        if len(self._buf) - 2 > self._max:
            self._fail(len(self._buf) - 2, out)

    def _check_regions(self, raw: bytes, out: list[Frame]) -> None:
        """Slow path, only for reads larger than the limit: find an oversized message."""
        start = 0
        for match in _SEPARATOR.finditer(raw):
            if match.start() - start > self._max:
                _messages(raw[:start], out)
                self._fail(match.start() - start, out)
            start = match.end()

    def _fail(self, size: int, out: list[Frame]) -> None:
        self._closed = True
        self._buf.clear()
        raise AmiProtocolError(
            f"AMI message exceeds {self._max} bytes without an end (at least {size} bytes)",
            frames=out,
        )

    def close(self) -> Message | None:
        """End of stream: return a last message that lacked its blank line, if any.

        Asterisk always ends messages properly, so a partial message here means the link was cut
        mid-message; it is returned rather than dropped, for the caller to log or use.
        """
        self._closed = True
        rest = bytes(self._buf)
        self._buf.clear()
        if self._expect_banner or not rest.strip(b"\r\n"):
            return None
        found: list[Frame] = []
        _messages(rest + b"\n\n", found)
        first = found[0] if found else None
        return first if isinstance(first, Message) else None


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
    """Encode header pairs as one AMI message (CRLF lines, blank line at the end).

    Raises :class:`ValueError` for a value with CR or LF (it would inject headers), a name
    that is empty or has a colon, or text that cannot be encoded.
    """
    parts = []
    for key, value in headers:
        if not key or ":" in key:
            raise ValueError(f"AMI header name must be non-empty and without a colon: {key!r}")
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


# --------------------------------------------------------------------------- action tracking


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action produced: its Response and, for list actions, the list items.

    ``events`` are the EventList members in order (``CoreShowChannel``, ``Status`` ...);
    ``complete`` is the closing ``...Complete`` event (``ListItems``), None for plain actions.
    """

    action_id: str
    response: Message
    events: tuple[Message, ...] = ()
    complete: Message | None = None


class ActionTracker:
    """Matches responses to pending actions by ActionID and gathers EventLists, sans-I/O.

    Policy (see ../shared/asterisk/README.md, traces 07, 08, 25):

    * A Response whose ActionID is pending ends a plain action at once.  With
      ``EventList: start`` the action stays open and every *event* carrying that ActionID is
      gathered, until one has ``EventList: Complete`` (every ``*Complete`` event in the traces
      has it; an event whose name ends in ``Complete`` is accepted too, for older versions).
    * The tracker only *gathers*; it never consumes.  The caller still delivers every event,
      list items included, to its event subscribers: nothing that arrived is hidden, and a
      subscriber can tell list items by their ActionID (they also lack ``Timestamp``).
    * Events carrying the ActionID of an action that already ended are plain events: that is
      how ``OriginateResponse`` of an ``Async`` Originate arrives (trace 11).
    * Messages with no or an unknown ActionID are ignored here (late answers to actions that
      timed out, or actions someone else sent).
    """

    __slots__ = ("_lists", "_pending")

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._lists: dict[str, tuple[Message, list[Message]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._pending

    def start(self, action_id: str) -> None:
        """Register an action about to be sent; its ActionID must not be pending already."""
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        self._pending.add(action_id)

    def forget(self, action_id: str) -> None:
        """Stop tracking one action (it timed out); a late response is then ignored."""
        self._pending.discard(action_id)
        self._lists.pop(action_id, None)

    def clear(self) -> list[str]:
        """Drop every pending action (the link is gone); return their ActionIDs."""
        ids = sorted(self._pending)
        self._pending.clear()
        self._lists.clear()
        return ids

    def feed(self, msg: Message) -> ActionResult | None:
        """Account for one received message; return a result if it ends an action."""
        if not self._pending:
            return None
        action_id = msg.action_id
        if action_id is None or action_id not in self._pending:
            return None
        kind = msg.kind
        if kind == "response":
            if action_id in self._lists:
                return None  # a second Response for the same id: not ours to interpret
            if (msg.get("eventlist") or "").lower() == "start":
                self._lists[action_id] = (msg, [])
                return None
            self._pending.discard(action_id)
            return ActionResult(action_id, msg)
        if kind != "event":
            return None
        gathered = self._lists.get(action_id)
        if gathered is None:
            return None  # an event before the list's Response: only an event
        response, items = gathered
        if (msg.get("eventlist") or "").lower() == "complete" or (
            msg.name.lower().endswith("complete") and "eventlist" not in msg
        ):
            del self._lists[action_id]
            self._pending.discard(action_id)
            return ActionResult(action_id, response, tuple(items), msg)
        items.append(msg)
        return None


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
