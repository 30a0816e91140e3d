"""The abandonment ledger: live answers and abandoned calls, today, rolling 24 h and 30 days."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

BUCKET_SECONDS = 300.0
DAY_SECONDS = 86_400.0
MONTH_SECONDS = 30 * DAY_SECONDS


@dataclass(frozen=True, slots=True)
class LedgerBucket:
    """Counts for one five-minute bucket starting at ``start`` (on the pacer's clock)."""

    start: float
    live: int
    abandoned: int


@dataclass(frozen=True, slots=True)
class LedgerWindow:
    """Live answers and abandoned calls over one window."""

    live: int
    abandoned: int

    @property
    def rate(self) -> float:
        """Abandoned / live answered (0.0 before the first live answer)."""
        return self.abandoned / self.live if self.live else 0.0

    def slack(self, target: float) -> float:
        """How many more abandoned calls this window could take now and still meet ``target``."""
        return target * self.live - self.abandoned


@dataclass(frozen=True, slots=True)
class LedgerView:
    """The three windows the cap is judged on."""

    today: LedgerWindow
    last_24h: LedgerWindow
    last_30d: LedgerWindow


class _Window:
    """A rolling sum over buckets younger than ``span`` seconds."""

    __slots__ = ("_buckets", "abandoned", "live", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._buckets: deque[list[float]] = deque()  # [start, live, abandoned]
        self.live = 0
        self.abandoned = 0

    def add(self, start: float, live: int, abandoned: int) -> None:
        """Count into the bucket that starts at ``start`` (buckets arrive in time order)."""
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1] += live
            self._buckets[-1][2] += abandoned
        else:
            self._buckets.append([start, float(live), float(abandoned)])
        self.live += live
        self.abandoned += abandoned

    def expire(self, now: float) -> None:
        """Drop buckets that ended more than ``span`` seconds before ``now``."""
        while self._buckets and self._buckets[0][0] + BUCKET_SECONDS <= now - self.span:
            _, live, abandoned = self._buckets.popleft()
            self.live -= int(live)
            self.abandoned -= int(abandoned)

    def view(self) -> LedgerWindow:
        """The current totals."""
        return LedgerWindow(live=self.live, abandoned=self.abandoned)

    def buckets(self) -> tuple[LedgerBucket, ...]:
        """The buckets still inside the window."""
        return tuple(LedgerBucket(b[0], int(b[1]), int(b[2])) for b in self._buckets)


class AbandonLedger:
    """Counts live answers and abandonments from the events the pacer observes.

    One pacer serves one day, so "today" is what this ledger has seen itself; the rolling
    windows also include ``history`` (earlier days' buckets, on the same clock), which the
    engine carries from yesterday's pacer via :meth:`buckets`.
    """

    def __init__(self, history: Iterable[LedgerBucket] = ()) -> None:
        self._today = LedgerWindow(0, 0)
        self._day = _Window(DAY_SECONDS)
        self._month = _Window(MONTH_SECONDS)
        latest = None
        for bucket in sorted(history, key=lambda b: b.start):
            self._day.add(bucket.start, bucket.live, bucket.abandoned)
            self._month.add(bucket.start, bucket.live, bucket.abandoned)
            latest = bucket.start
        if latest is not None:
            self._day.expire(latest)
            self._month.expire(latest)

    def record(self, at: float, *, live: int = 0, abandoned: int = 0) -> None:
        """Count ``live`` answers and ``abandoned`` calls at time ``at``."""
        start = (at // BUCKET_SECONDS) * BUCKET_SECONDS
        self._today = LedgerWindow(self._today.live + live, self._today.abandoned + abandoned)
        for window in (self._day, self._month):
            window.add(start, live, abandoned)
            window.expire(at)

    def view(self) -> LedgerView:
        """Today, rolling 24 h and rolling 30 days, as of the latest recorded event."""
        return LedgerView(today=self._today, last_24h=self._day.view(), last_30d=self._month.view())

    def buckets(self) -> tuple[LedgerBucket, ...]:
        """Everything inside the 30-day window: hand this to tomorrow's pacer as ``history``."""
        return self._month.buckets()
