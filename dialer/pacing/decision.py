"""The decision record: why the pacer launched what it launched (for the wallboard and ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from dialer.pacing.ledger import LedgerView

Reason: TypeAlias = Literal[
    "no_agents",  # nobody ready and nobody expected to free up within the horizon
    "few_agents",  # too few agents for statistics: progressive
    "cold_start",  # not enough history yet: progressive
    "model",  # the predictive model chose the count
    "progressive_floor",  # the model wanted fewer than progressive, which is always safe
    "ledger_exhausted",  # today (or 24 h, 30 days) is over budget: progressive until it is not
    "in_flight_cap",  # the model wanted more than the cap on calls in flight per agent
    "formula",  # progressive or ratio mode: the fixed formula
]


@dataclass(frozen=True, slots=True)
class PacingEstimates:
    """The online estimates the predictive model used."""

    answer_rate: float
    live_share: float
    ring_to_answer_mean: float
    talk_mean: float
    wrap_mean: float
    observations: int
    stable: bool


@dataclass(frozen=True, slots=True)
class PacingDecision:
    """One decision: inputs, estimates, predicted outcome, the count chosen and the reason."""

    at: float
    mode: str
    launch: int
    reason: Reason
    ready: int
    talking: int
    wrapping: int
    ringing: int
    waiting: int
    progressive: int
    estimates: PacingEstimates | None = None
    expected_free_agents: float = 0.0
    expected_live: float = 0.0
    expected_abandoned: float = 0.0
    marginal_abandon: float = 0.0
    threshold: float = 0.0
    ledger: LedgerView | None = None
