"""``dialer bench ami``: AMI decode throughput, ours against panoramisk 1.4, in one run.

Both parsers get the same bytes in the same 64 KiB reads, as from a socket.  The capture is
built from the recorded Asterisk 22 traffic (every ``*.ami`` trace, banners stripped, repeated
up to the requested size) or read from a file.  Rounds alternate between the parsers and the
best round of each counts, timed in process CPU seconds, so a noisy neighbour hurts both alike.

What each side does per message:

* panoramisk: ``AMIProtocol.data_received`` as in a live client (decode, split, build its
  case-insensitive dict of every header); only its response matching is replaced by a counter.
* ours, "route": what :class:`dialer.ami.AmiClient` does with every message - decode, then read
  its kind, name and ActionID.
* ours, "all headers": the same plus every header split out (the worst case for our lazy
  message), printed as a second ratio so the headline cannot hide it.

panoramisk is the baseline only; it is imported here and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dialer.protocol.ami import AmiDecoder, Message

READ_SIZE = 1 << 16
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def default_traces_dir() -> Path | None:
    """The recorded traces next to the project (../shared/asterisk/traces), if present."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (
        Path.cwd() / ".." / "shared" / "asterisk" / "traces",
        here.parent / "shared" / "asterisk" / "traces",
    ):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def build_capture(traces: Path, target_bytes: int) -> tuple[bytes, int]:
    """One banner + the messages of every trace, repeated to at least ``target_bytes``."""
    bodies = []
    files = sorted(traces.glob("*.ami"))
    if not files:
        raise FileNotFoundError(f"no *.ami traces in {traces}")
    for path in files:
        data = path.read_bytes()
        if data.startswith(b"Asterisk Call Manager/"):
            data = data[data.index(b"\n") + 1 :]
        bodies.append(data)
    body = b"".join(bodies)
    repeat = max(1, -(-target_bytes // len(body)))
    return BANNER + body * repeat, len(files)


def _chunks(data: bytes, size: int = READ_SIZE) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def ours_route(chunks: Sequence[bytes]) -> int:
    """Decode and route every message (kind, name, ActionID); return the message count."""
    dec = AmiDecoder(max_message_bytes=1 << 20)
    n = 0
    for chunk in chunks:
        for frame in dec.feed(chunk):
            if isinstance(frame, Message):
                _ = (frame.kind, frame.name, frame.action_id)
                n += 1
    return n


def ours_all_headers(chunks: Sequence[bytes]) -> int:
    """Decode and split every header of every message; return the message count."""
    dec = AmiDecoder(max_message_bytes=1 << 20)
    n = 0
    for chunk in chunks:
        for frame in dec.feed(chunk):
            if isinstance(frame, Message):
                _ = (frame.kind, frame.name, frame.action_id, frame.headers)
                n += 1
    return n


def panoramisk_parse(chunks: Sequence[bytes]) -> int:
    """panoramisk 1.4's parser, fed like its live protocol; return the message count."""
    try:
        from panoramisk.ami_protocol import AMIProtocol
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "panoramisk 1.4 is needed for the baseline: pip install panoramisk==1.4"
        ) from exc

    class Counting(AMIProtocol):  # type: ignore[misc]
        count = 0

        def handle_message(self, message: object) -> None:
            self.count += 1

    proto = Counting()
    proto.connection_made(None)
    for chunk in chunks:
        proto.data_received(chunk)
    return int(proto.count)


@dataclass(frozen=True, slots=True)
class Figure:
    """One parser's best round."""

    label: str
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class BenchResult:
    """The figures of one benchmark run."""

    capture_bytes: int
    traces: int
    rounds: int
    route: Figure
    all_headers: Figure
    panoramisk: Figure

    @property
    def ratio(self) -> float:
        """Headline: our routed decode over panoramisk's."""
        return self.route.rate / self.panoramisk.rate

    @property
    def ratio_all_headers(self) -> float:
        """Our decode with every header split, over panoramisk's."""
        return self.all_headers.rate / self.panoramisk.rate


def _time(fn: Callable[[Sequence[bytes]], int], chunks: Sequence[bytes]) -> tuple[int, float]:
    # CPU time of this (single-threaded) process: other load on the machine slows both
    # parsers alike but does not count as their time.
    start = time.process_time()
    n = fn(chunks)
    return n, time.process_time() - start


def run_bench(data: bytes, *, traces: int = 0, rounds: int = 5) -> BenchResult:
    """Time the three parsers on ``data``, alternating, best of ``rounds`` each."""
    chunks = _chunks(data)
    runners: list[tuple[str, Callable[[Sequence[bytes]], int]]] = [
        ("ours (route: kind, name, ActionID)", ours_route),
        ("ours (every header split)", ours_all_headers),
        ("panoramisk 1.4 (its data_received)", panoramisk_parse),
    ]
    best: dict[str, tuple[int, float]] = {}
    for _ in range(rounds):
        for label, fn in runners:
            n, secs = _time(fn, chunks)
            if label not in best or secs < best[label][1]:
                best[label] = (n, secs)
    figs = [Figure(label, *best[label]) for label, _ in runners]
    counts = {f.messages for f in figs}
    if len(counts) != 1:
        raise RuntimeError(f"the parsers disagree on the message count: {sorted(counts)}")
    return BenchResult(len(data), traces, rounds, figs[0], figs[1], figs[2])


def report(result: BenchResult) -> str:
    """Human-readable figures and ratios."""
    mb = result.capture_bytes / 1e6
    lines = [
        f"AMI decode benchmark: {mb:.1f} MB capture, {result.route.messages:,} messages"
        + (f" (built from {result.traces} recorded traces)" if result.traces else "")
        + f", {READ_SIZE // 1024} KiB reads, best of {result.rounds} rounds (CPU time)",
        f"{'parser':<40}{'msgs/s':>14}{'MB/s':>10}",
    ]
    for fig in (result.route, result.all_headers, result.panoramisk):
        lines.append(f"{fig.label:<40}{fig.rate:>14,.0f}{mb / fig.seconds:>10.1f}")
    lines.append(f"ratio ours/panoramisk (route):        {result.ratio:.2f}x  (target >= 3x)")
    lines.append(f"ratio ours/panoramisk (every header): {result.ratio_all_headers:.2f}x")
    return "\n".join(lines)
