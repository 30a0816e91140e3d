"""The policies the benchmark compares, all driven through the pacer contract."""

from __future__ import annotations

import math
from collections import deque

from dialer.pacing import (
    AbandonLedger,
    CallAbandoned,
    CallAnswered,
    LedgerBucket,
    Pacer,
    PacingDecision,
    PacingEvent,
    PacingSnapshot,
    make_pacer,
    progressive_count,
)

POLICIES = ("predictive", "progressive", "ratio2", "vicidial")


class AdaptiveReplica:
    """A replica of VICIdial's adaptive dial level, as a baseline (not a product mode).

    Every second it samples ready agents R, waiting live calls W and logged-in agents A;
    every 15 s the level L is multiplied by 1 + (mean R - mean W) / mean A, kept within
    [1, 3]; halved if over half of the last minute's live answers were dropped; set to 1
    while the day's drop rate is over the target after 50 live answers.  Launches are
    round(L x (ready + talking)) - (ringing + waiting + talking), so L = 1 is progressive.
    """

    mode = "vicidial-adaptive"

    def __init__(self, target_abandon_rate: float = 0.03, history: tuple[LedgerBucket, ...] = ()):
        self.target = target_abandon_rate
        self.level = 1.0
        self.ledger = AbandonLedger(history)
        self.last_decision: PacingDecision | None = None
        self._next_sample: float | None = None
        self._samples: list[tuple[int, int, int]] = []
        self._recent: deque[tuple[float, bool]] = deque()  # (at, dropped) for live answers

    def observe(self, event: PacingEvent) -> None:
        """Count live answers and drops for the day and for the last minute."""
        if isinstance(event, CallAnswered) and event.live:
            self.ledger.record(event.at, live=1)
            self._recent.append((event.at, False))
        elif isinstance(event, CallAbandoned):
            self.ledger.record(event.at, abandoned=1)
            self._recent.append((event.at, True))

    def _sample(self, snap: PacingSnapshot) -> None:
        if self._next_sample is None:
            self._next_sample = snap.now
        while snap.now >= self._next_sample:
            agents = snap.ready_agents + len(snap.talking) + len(snap.wrapping)
            self._samples.append((snap.ready_agents, len(snap.waiting), agents))
            self._next_sample += 1.0
            if len(self._samples) == 15:
                self._adjust(snap.now)

    def _adjust(self, now: float) -> None:
        mean_r = sum(s[0] for s in self._samples) / 15.0
        mean_w = sum(s[1] for s in self._samples) / 15.0
        mean_a = sum(s[2] for s in self._samples) / 15.0
        self._samples.clear()
        if mean_a > 0:
            self.level *= 1.0 + (mean_r - mean_w) / mean_a
        while self._recent and self._recent[0][0] < now - 60.0:
            self._recent.popleft()
        live = sum(1 for _, dropped in self._recent if not dropped)
        drops = len(self._recent) - live
        if live and drops > live / 2:
            self.level /= 2.0
        today = self.ledger.view().today
        if today.live >= 50 and today.rate > self.target:
            self.level = 1.0
        self.level = min(3.0, max(1.0, self.level))

    def explain(self, snapshot: PacingSnapshot) -> PacingDecision:
        """The launches at the current level (does not sample)."""
        busy = snapshot.ready_agents + len(snapshot.talking)
        in_flight = len(snapshot.ringing) + len(snapshot.waiting) + len(snapshot.talking)
        launch = max(0, math.floor(self.level * busy + 0.5) - in_flight)
        return PacingDecision(
            at=snapshot.now,
            mode=self.mode,
            launch=launch,
            reason="formula",
            ready=snapshot.ready_agents,
            talking=len(snapshot.talking),
            wrapping=len(snapshot.wrapping),
            ringing=len(snapshot.ringing),
            waiting=len(snapshot.waiting),
            progressive=progressive_count(snapshot),
            threshold=self.level,
            ledger=self.ledger.view(),
        )

    def decide(self, snapshot: PacingSnapshot) -> int:
        """Sample, adjust the level every 15 s, launch."""
        self._sample(snapshot)
        decision = self.explain(snapshot)
        self.last_decision = decision
        return decision.launch


def make_policy(name: str, history: tuple[LedgerBucket, ...] = (), **options: float) -> Pacer:
    """One of :data:`POLICIES`, fresh for one day."""
    if name == "predictive":
        return make_pacer("predictive", history=history, **options)
    if name == "progressive":
        return make_pacer("progressive", history=history)
    if name == "ratio2":
        return make_pacer("ratio", ratio=2.0, history=history)
    if name == "vicidial":
        return AdaptiveReplica(history=history)
    raise ValueError(f"unknown policy {name!r}; one of {', '.join(POLICIES)}")
