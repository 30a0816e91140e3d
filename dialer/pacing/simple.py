"""The fixed-formula pacers: progressive and ratio."""

from __future__ import annotations

from dialer.pacing.decision import PacingDecision
from dialer.pacing.events import CallAbandoned, CallAnswered, PacingEvent, PacingSnapshot
from dialer.pacing.ledger import AbandonLedger, LedgerBucket


def progressive_count(snapshot: PacingSnapshot) -> int:
    """Ready agents minus calls ringing minus live calls waiting, never below zero."""
    return max(0, snapshot.ready_agents - len(snapshot.ringing) - len(snapshot.waiting))


def ratio_count(snapshot: PacingSnapshot, ratio: float) -> int:
    """round(ratio x ready agents) minus calls ringing minus live calls waiting, never below 0."""
    wanted = round(ratio * snapshot.ready_agents)
    return max(0, wanted - len(snapshot.ringing) - len(snapshot.waiting))


class FormulaPacer:
    """Progressive (``ratio`` None) or fixed-ratio dialing; keeps the ledger all the same."""

    def __init__(self, ratio: float | None = None, history: tuple[LedgerBucket, ...] = ()) -> None:
        if ratio is not None and not ratio > 0:
            raise ValueError(f"ratio must be > 0, got {ratio}")
        self.ratio = ratio
        self.mode = "progressive" if ratio is None else "ratio"
        self.ledger = AbandonLedger(history)
        self.last_decision: PacingDecision | None = None

    def observe(self, event: PacingEvent) -> None:
        """Count live answers and abandonments; the formula needs nothing else."""
        if isinstance(event, CallAnswered) and event.live:
            self.ledger.record(event.at, live=1)
        elif isinstance(event, CallAbandoned):
            self.ledger.record(event.at, abandoned=1)

    def explain(self, snapshot: PacingSnapshot) -> PacingDecision:
        """The decision and its record."""
        progressive = progressive_count(snapshot)
        launch = progressive if self.ratio is None else ratio_count(snapshot, self.ratio)
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
            progressive=progressive,
            expected_free_agents=float(snapshot.ready_agents),
            ledger=self.ledger.view(),
        )

    def decide(self, snapshot: PacingSnapshot) -> int:
        """How many calls to launch now."""
        decision = self.explain(snapshot)
        self.last_decision = decision
        return decision.launch
