"""The pacer: how many calls to launch now, for one campaign and one day (pure; clock is input).

pacer = make_pacer("predictive", target_abandon_rate=0.03)  # or "progressive", "ratio"
pacer.observe(event)          # every event, in time order
n = pacer.decide(snapshot)    # int >= 0: calls to launch now
pacer.last_decision           # the record of that decision (inputs, estimates, reason)
"""

from __future__ import annotations

from typing import Any, Protocol

from dialer.pacing.decision import PacingDecision, PacingEstimates, Reason
from dialer.pacing.events import (
    UNANSWERED_REASONS,
    CallAbandoned,
    CallAnswered,
    CallConnected,
    CallLaunched,
    CallUnanswered,
    PacingEvent,
    PacingSnapshot,
    TalkEnded,
    UnansweredReason,
    WrapEnded,
)
from dialer.pacing.ledger import AbandonLedger, LedgerBucket, LedgerView, LedgerWindow
from dialer.pacing.predictive import PredictivePacer
from dialer.pacing.simple import FormulaPacer, progressive_count, ratio_count

__all__ = [
    "UNANSWERED_REASONS",
    "AbandonLedger",
    "CallAbandoned",
    "CallAnswered",
    "CallConnected",
    "CallLaunched",
    "CallUnanswered",
    "FormulaPacer",
    "LedgerBucket",
    "LedgerView",
    "LedgerWindow",
    "Pacer",
    "PacingDecision",
    "PacingEstimates",
    "PacingEvent",
    "PacingSnapshot",
    "PredictivePacer",
    "Reason",
    "TalkEnded",
    "UnansweredReason",
    "WrapEnded",
    "make_pacer",
    "progressive_count",
    "ratio_count",
]

MODES = ("predictive", "progressive", "ratio")


class Pacer(Protocol):
    """What every pacer offers: observe events, decide a count, explain a decision."""

    mode: str
    ledger: AbandonLedger
    last_decision: PacingDecision | None

    def observe(self, event: PacingEvent) -> None:
        """Learn from one event; events arrive in time order."""

    def decide(self, snapshot: PacingSnapshot) -> int:
        """How many calls to launch now (>= 0); records ``last_decision``."""

    def explain(self, snapshot: PacingSnapshot) -> PacingDecision:
        """The decision for ``snapshot`` with its record, without changing the pacer."""


def make_pacer(mode: str | tuple[str, float], **options: Any) -> Pacer:
    """Build a pacer: "predictive" (target_abandon_rate, abandon_after_seconds, ...),
    "progressive", or "ratio" (ratio, default 2.0; ("ratio", 2.5) works too).  Every mode
    accepts ``history`` (earlier days' :class:`LedgerBucket` s on the same clock).
    """
    if isinstance(mode, tuple):
        mode, ratio = mode
        options["ratio"] = ratio
    history = tuple(options.pop("history", ()))
    if mode == "predictive":
        try:
            return PredictivePacer(history=history, **options)
        except TypeError as exc:
            raise TypeError(f"make_pacer('predictive'): {exc}") from None
    if mode == "progressive":
        _no_options(mode, options)
        return FormulaPacer(None, history)
    if mode == "ratio":
        ratio = float(options.pop("ratio", 2.0))
        _no_options(mode, options)
        return FormulaPacer(ratio, history)
    raise ValueError(f"unknown pacing mode {mode!r}; one of {', '.join(MODES)}")


def _no_options(mode: str, options: dict[str, Any]) -> None:
    if options:
        raise TypeError(f"make_pacer({mode!r}) takes no option(s) {', '.join(sorted(options))}")
