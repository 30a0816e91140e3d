"""The predictive pacer: model the next half-minute, launch while the marginal call is safe.

At each decision the pacer predicts, for every horizon k = 1..K seconds ahead,

* supply S(k): ready agents plus each busy agent's chance of being free by k + grace
  (from the talk and wrap-up distributions, conditioned on how long that agent has been busy);
* demand D(k): live calls waiting plus each ringing call's chance of becoming a live answer by
  k (from the answer rate, live share and ring-time distributions, conditioned on how long it
  has rung), plus the other calls launched now.

A new call answered live at horizon k is abandoned if the live answers before it already use
up every agent free by k + grace, so its abandonment probability is the sum over k of
P(live answer in second k) x P(D(k) >= S(k + grace)), with D - S, a sum of independent
Bernoulli variables, taken as normal.  The pacer launches the largest n whose n-th call is
abandoned with probability at most a threshold; the threshold is steered by the abandonment
ledger: it grows while the day (and the 24 h and 30 day windows) are under budget and shrinks
with every abandonment, so the realised rate settles under the target.  Progressive dialing
is a floor (it cannot abandon) and the fallback while data are missing or agents are few.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dialer.pacing.decision import PacingDecision, PacingEstimates, Reason
from dialer.pacing.estimators import (
    DecayedHistogram,
    DecayedRate,
    FloatArray,
    lognormal_pmf,
    mean_of,
    spike_pmf,
)
from dialer.pacing.events import (
    CallAbandoned,
    CallAnswered,
    CallUnanswered,
    PacingEvent,
    PacingSnapshot,
    TalkEnded,
    WrapEnded,
)
from dialer.pacing.ledger import AbandonLedger, LedgerBucket
from dialer.pacing.simple import progressive_count

RING_BINS = 120  # seconds of ringing the model knows about (1 s bins)
TALK_BINS = 2400  # 40 minutes of talk
ROWS = TALK_BINS  # rows per segment of the combined table
GATHER_LIMIT = 1000  # above this many people, counting per row beats gathering rows
WRAP_BINS = 900  # 15 minutes of wrap-up
REBUILD_EVERY = 32  # observations between rebuilds of the prediction tables
FAST_MEMORY = 60.0  # calls: the short memory that notices a sudden change
SLOW_MEMORY = 400.0  # calls: the long memory
DURATION_MEMORY = 600.0  # talks / wrap-ups remembered
CONTINUITY = 0.5  # X is an integer: P(X >= 0) = P(X > -0.5)
SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@functools.cache
def _excess_table() -> tuple[FloatArray, FloatArray]:
    """h(z) = z*Phi(z) + phi(z) - max(z, 0) on a fine grid; it vanishes at both ends.

    Interpolating it costs a handful of array operations, much less than an erf formula.
    """
    zs = [i / 100.0 for i in range(-800, 801)]
    hs = []
    for z in zs:
        cdf = 0.5 * (1.0 + math.erf(z / SQRT2))
        pdf = INV_SQRT_2PI * math.exp(-0.5 * z * z)
        hs.append(z * cdf + pdf - max(z, 0.0))
    return np.asarray(zs, dtype=np.float64), np.asarray(hs, dtype=np.float64)


@functools.cache
def _cdf_table() -> FloatArray:
    """Phi(z) on the same grid as :func:`_excess_table`."""
    return np.asarray(
        [0.5 * (1.0 + math.erf(i / 100.0 / SQRT2)) for i in range(-800, 801)], dtype=np.float64
    )


def normal_cdf(z: FloatArray) -> FloatArray:
    """Phi(z), elementwise, by linear interpolation on a fine grid."""
    table = _cdf_table()
    pos = np.clip((z + 8.0) * 100.0, 0.0, 1599.999)
    index = pos.astype(np.intp)
    low = table[index]
    result: FloatArray = low + (pos - index) * (table[index + 1] - low)
    return result


def expected_excess(mean: FloatArray, var: FloatArray) -> FloatArray:
    """E[max(X, 0)] for X normal with the given mean and variance, elementwise."""
    _, hs = _excess_table()
    sd = np.sqrt(np.maximum(var, 1e-12))
    # Linear interpolation on the uniform grid by hand: np.interp's binary search is slower.
    pos = np.clip((mean / sd + 8.0) * 100.0, 0.0, 1599.999)
    index = pos.astype(np.intp)
    frac = pos - index
    low = hs[index]
    h = low + frac * (hs[index + 1] - low)
    result: FloatArray = sd * h + np.maximum(mean, 0.0)
    return result


def _with_tail(pmf: FloatArray, pad: int, tail_seconds: float) -> FloatArray:
    """Extend a pmf whose last bin means "this long or longer" with a geometric tail.

    Without this, someone busy for longer than the grid would look certain to free up
    within a second; with it they free at a low, constant hazard.
    """
    tail = float(pmf[-1])
    ratio = math.exp(-1.0 / tail_seconds)
    geometric = tail * (1.0 - ratio) * ratio ** np.arange(pad + 1, dtype=np.float64)
    out: FloatArray = np.concatenate([pmf[:-1], geometric])
    return out


def _cdf(pmf: FloatArray) -> FloatArray:
    """C[m] = P(duration < m bins), for m = 0..len(pmf)."""
    out: FloatArray = np.concatenate([[0.0], np.cumsum(pmf)])
    return np.minimum(out, 1.0)


class PredictivePacer:
    """Predictive dialing under an abandonment cap; see the module docstring for the model."""

    mode = "predictive"

    def __init__(
        self,
        *,
        target_abandon_rate: float = 0.03,
        abandon_after_seconds: float = 2.0,
        min_agents: int = 5,
        horizon_seconds: int = 30,
        safety_margin: float = 0.05,
        reserve_calls: float = 4.0,
        threshold: float = 0.015,
        threshold_gain: float = 0.25,
        max_calls_per_agent: float = 10.0,
        warmup_calls: int = 20,
        warmup_talks: int = 10,
        history: tuple[LedgerBucket, ...] = (),
    ) -> None:
        if not 0.0 < target_abandon_rate < 1.0:
            raise ValueError(f"target_abandon_rate must be in (0, 1), got {target_abandon_rate}")
        if abandon_after_seconds < 0:
            raise ValueError("abandon_after_seconds must be >= 0")
        if horizon_seconds < 1 or min_agents < 0 or max_calls_per_agent <= 0:
            raise ValueError("horizon_seconds >= 1, min_agents >= 0, max_calls_per_agent > 0")
        if not 0.0 <= safety_margin < 1.0 or not 0.0 < threshold < 1.0 or threshold_gain < 0:
            raise ValueError("safety_margin in [0, 1), threshold in (0, 1), threshold_gain >= 0")
        self.target = target_abandon_rate
        self.grace = int(abandon_after_seconds)  # whole seconds, rounded down: conservative
        self.min_agents = min_agents
        self.horizon = horizon_seconds
        self.safety_margin = safety_margin
        self.reserve_calls = reserve_calls
        self.threshold0 = threshold
        self.threshold_gain = threshold_gain
        self.max_calls_per_agent = max_calls_per_agent
        self.warmup_calls = warmup_calls
        self.warmup_talks = warmup_talks
        self.ledger = AbandonLedger(history)
        self.last_decision: PacingDecision | None = None

        # Priors: a typical outbound campaign; they only matter until data arrive.
        self.answer_fast = DecayedRate(0.3, 5.0, FAST_MEMORY)
        self.answer_slow = DecayedRate(0.3, 5.0, SLOW_MEMORY)
        self.live_fast = DecayedRate(0.5, 5.0, FAST_MEMORY)
        self.live_slow = DecayedRate(0.5, 5.0, SLOW_MEMORY)
        self.ring_answer = DecayedHistogram(lognormal_pmf(9.0, 0.6, RING_BINS), 5.0, SLOW_MEMORY)
        self.ring_fail = DecayedHistogram(spike_pmf(25.0, RING_BINS), 5.0, SLOW_MEMORY)
        self.talk = DecayedHistogram(lognormal_pmf(120.0, 1.2, TALK_BINS), 5.0, DURATION_MEMORY)
        self.wrap = DecayedHistogram(lognormal_pmf(20.0, 0.8, WRAP_BINS), 5.0, DURATION_MEMORY)

        self._ring_dirty = 0
        self._busy_dirty = 0
        self._warm = False
        self._tables_ready = False
        k = self.horizon
        # One table for everyone, in three segments of ROWS rows (talking, wrapping, ringing),
        # so a decision gathers all rows at once: agents count as -p (supply), calls as +p.
        self._signed = np.zeros((3 * ROWS, k))
        self._var = np.zeros((3 * ROWS, k))
        self._both = np.zeros((3 * ROWS, 2 * k))  # [signed | var], for large snapshots
        self._q = np.zeros(k)
        self._dq = np.zeros(k)  # a new call's chance of a live answer in each second
        self._estimates: PacingEstimates | None = None

    # ------------------------------------------------------------------ observing

    def observe(self, event: PacingEvent) -> None:
        """Learn from one event (in time order); rebuild the prediction tables now and then."""
        if isinstance(event, CallAnswered):
            self._answered(event.ring_seconds, True)
            self.live_fast.add(event.live)
            self.live_slow.add(event.live)
            if event.live:
                self.ledger.record(event.at, live=1)
        elif isinstance(event, CallUnanswered):
            self._answered(event.ring_seconds, False)
        elif isinstance(event, CallAbandoned):
            self.ledger.record(event.at, abandoned=1)
        elif isinstance(event, TalkEnded):
            self.talk.add(event.talk_seconds)
            self._busy_dirty += 1
        elif isinstance(event, WrapEnded):
            self.wrap.add(event.wrap_seconds)
            self._busy_dirty += 1
        else:  # CallLaunched, CallConnected: the snapshot already tells what they change
            return
        self._maybe_rebuild()

    def _answered(self, ring_seconds: float, answered: bool) -> None:
        self.answer_fast.add(answered)
        self.answer_slow.add(answered)
        (self.ring_answer if answered else self.ring_fail).add(ring_seconds)
        self._ring_dirty += 1

    def _maybe_rebuild(self) -> None:
        # Rebuilding depends only on the events seen, never on when decide() was called,
        # so the same events always give the same tables.
        if not self._warm:
            if self.answer_slow.count < self.warmup_calls or self.talk.count < self.warmup_talks:
                return
            if self.wrap.count < self.warmup_talks:
                return
            self._warm = True
            self._rebuild_ring()
            self._rebuild_busy()
            self._tables_ready = True
            return
        rebuilt = False
        if self._ring_dirty >= REBUILD_EVERY:
            self._rebuild_ring()
            rebuilt = True
        if self._busy_dirty >= REBUILD_EVERY:
            self._rebuild_busy()
            rebuilt = True
        if rebuilt:
            self._estimates = None

    def _rates(self) -> tuple[float, float, bool]:
        """Answer rate and live share for prediction, and whether they look stable.

        The slow estimate normally; after a sudden change the larger of the two, because
        over-predicting live answers costs idle time, under-predicting them costs people.
        """
        fa, sa = self.answer_fast.value, self.answer_slow.value
        fl, sl = self.live_fast.value, self.live_slow.value
        stable = abs(fa - sa) <= 0.25 * sa and abs(fl - sl) <= 0.25 * sl
        if stable:  # the long memory is the less noisy estimate
            return sa, sl, True
        return max(fa, sa), max(fl, sl), False

    def _rebuild_ring(self) -> None:
        self._ring_dirty = 0
        p_answer, p_live, _ = self._rates()
        k = self.horizon
        fa = self.ring_answer.pmf()
        fu = self.ring_fail.pmf()
        ca = _cdf(np.concatenate([fa, np.zeros(k)]))
        cu = _cdf(fu)
        rows = np.arange(RING_BINS)
        ahead = rows[:, None] + np.arange(1, k + 1)[None, :]
        still = p_answer * (1.0 - ca[rows]) + (1.0 - p_answer) * (1.0 - cu[rows])
        gain = p_answer * p_live * (ca[ahead] - ca[rows][:, None])
        pa = np.where(still[:, None] > 1e-9, gain / np.maximum(still[:, None], 1e-9), 0.0)
        self._store(2, np.clip(pa, 0.0, 1.0), 1.0)
        self._q = self._signed[2 * ROWS].copy()
        self._dq = np.diff(np.concatenate([[0.0], self._q]))

    def _rebuild_busy(self) -> None:
        self._busy_dirty = 0
        k, g = self.horizon, self.grace
        span = k + g
        wrap = _with_tail(self.wrap.pmf(), TALK_BINS + span, 120.0)
        cw = _cdf(wrap)
        srows = np.arange(WRAP_BINS)
        ahead = srows[:, None] + np.arange(1 + g, k + g + 1)[None, :]
        sw = 1.0 - cw[srows]
        pw = (cw[ahead] - cw[srows][:, None]) / np.maximum(sw[:, None], 1e-12)
        self._store(1, np.clip(pw, 0.0, 1.0), -1.0)

        # A talking agent frees when the rest of the talk plus a whole wrap-up fit in the window.
        talk = _with_tail(self.talk.pmf(), span + 1, 600.0)
        ct = _cdf(talk)
        windows = sliding_window_view(talk, span)[:TALK_BINS]  # [i, d] = f_T[i + d]
        d = np.arange(span)[:, None]
        room = np.arange(1 + g, k + g + 1)[None, :] - d  # seconds left for the wrap-up
        g_matrix = np.where(room >= 1, cw[np.clip(room, 0, cw.shape[0] - 1)], 0.0)
        st = 1.0 - ct[:TALK_BINS]
        pt = (windows @ g_matrix) / np.maximum(st[:, None], 1e-12)
        self._store(0, np.clip(pt, 0.0, 1.0), -1.0)

    def _store(self, segment: int, p: FloatArray, sign: float) -> None:
        """Write one segment; elapsed times past its end repeat its last row."""
        if p.shape[0] < ROWS:
            p = np.concatenate([p, np.repeat(p[-1:], ROWS - p.shape[0], axis=0)])
        rows = slice(segment * ROWS, (segment + 1) * ROWS)
        self._signed[rows] = sign * p
        self._var[rows] = p * (1.0 - p)
        self._both[rows] = np.concatenate([self._signed[rows], self._var[rows]], axis=1)

    # ------------------------------------------------------------------ deciding

    def estimates(self) -> PacingEstimates:
        """The estimates behind the current prediction tables (for the record and wallboard)."""
        if self._estimates is None:
            self._estimates = self._current_estimates()
        return self._estimates

    def _current_estimates(self) -> PacingEstimates:
        p_answer, p_live, stable = self._rates()
        return PacingEstimates(
            answer_rate=p_answer,
            live_share=p_live,
            ring_to_answer_mean=mean_of(self.ring_answer.pmf()),
            talk_mean=mean_of(self.talk.pmf()),
            wrap_mean=mean_of(self.wrap.pmf()),
            observations=self.answer_slow.count,
            stable=stable,
        )

    def _slack(self, reserve: float = 0.0) -> float:
        """Abandonments still in hand: the least over today (at its margin, less ``reserve``),
        the last 24 h and the last 30 days."""
        view = self.ledger.view()
        return min(
            view.today.slack(self.target * (1.0 - self.safety_margin)) - reserve,
            view.last_24h.slack(self.target),
            view.last_30d.slack(self.target),
        )

    def _over_budget(self, committed: float = 0.0) -> bool:
        """Whether today (at its margin), the last 24 h or the last 30 days are over budget
        once the abandonments expected from calls already out (``committed``) are counted."""
        return self._slack() - committed < 0.0

    def threshold(self, committed: float = 0.0) -> float:
        """The marginal-abandonment threshold the ledger allows now, with ``committed``
        abandonments expected from the calls already out taken off the budget."""
        # A few abandonments kept in hand today: the last ones of a day cannot be made up for.
        slack = self._slack(self.reserve_calls) - committed
        value = self.threshold0 * math.exp(self.threshold_gain * min(slack, 20.0))
        return min(max(value, 0.002), 0.45)

    def decide(self, snapshot: PacingSnapshot) -> int:
        """How many calls to launch now."""
        decision = self.explain(snapshot)
        self.last_decision = decision
        return decision.launch

    def explain(self, snapshot: PacingSnapshot) -> PacingDecision:
        """The decision with its full record; has no effect on the pacer."""
        progressive = progressive_count(snapshot)
        agents = snapshot.ready_agents + len(snapshot.talking) + len(snapshot.wrapping)

        def record(launch: int, reason: Reason, **extra: float) -> PacingDecision:
            return PacingDecision(
                at=snapshot.now,
                mode=self.mode,
                launch=launch,
                reason=reason,
                ready=snapshot.ready_agents,
                talking=len(snapshot.talking),
                wrapping=len(snapshot.wrapping),
                ringing=len(snapshot.ringing),
                waiting=len(snapshot.waiting),
                progressive=progressive,
                estimates=self.estimates() if self._tables_ready else None,
                ledger=self.ledger.view(),
                **extra,
            )

        if agents == 0:
            return record(0, "no_agents")
        if agents < self.min_agents:
            return record(progressive, "few_agents")
        if not self._tables_ready:
            return record(progressive, "cold_start")

        if self._over_budget():  # the cap is a cap: over budget, dial only what cannot drop
            return record(progressive, "ledger_exhausted")
        mean0, var0, free = self._gather(snapshot)
        if snapshot.ready_agents == 0 and free < 0.5:
            return record(0, "no_agents", expected_free_agents=free)
        # The calls already ringing or waiting will drop some people whatever is launched now:
        # that is budget spent, not budget in hand.  Without this, a burst of answers near the
        # end of a small day (a few hundred live answers) spends past the cap before the ledger
        # sees it.
        committed = float(expected_excess(mean0, var0).max())
        if self._over_budget(committed):
            return record(
                progressive,
                "ledger_exhausted",
                expected_free_agents=free,
                expected_abandoned=committed,
            )
        theta = self.threshold(committed)
        _, _, stable = self._rates()
        if not stable:  # something changed suddenly: lean towards progressive until it settles
            theta *= 0.5
        cap = int(self.max_calls_per_agent * agents) + 1
        room = max(0, cap - len(snapshot.ringing) - len(snapshot.waiting))
        q = self._q
        n, overflow, marginal = self._largest_safe(mean0, var0, q, theta, room)
        reason: Reason = "model"
        if n >= room:
            reason = "in_flight_cap"
        if n < progressive:
            n, reason = progressive, "progressive_floor"
        return record(
            n,
            reason,
            expected_free_agents=free,
            expected_live=float(mean0[-1] + free + n * q[-1]),
            expected_abandoned=overflow,
            marginal_abandon=marginal,
            threshold=theta,
        )

    def _gather(self, snapshot: PacingSnapshot) -> tuple[FloatArray, FloatArray, float]:
        """Per horizon: mean and variance of (live demand - agents available); and the
        expected number of agents free by the last horizon."""
        busy = len(snapshot.talking) + len(snapshot.wrapping)
        ready = float(snapshot.ready_agents)
        if busy + len(snapshot.ringing) > GATHER_LIMIT:
            return self._count_rows(snapshot, ready)
        elapsed = snapshot.talking + snapshot.wrapping + snapshot.ringing
        k = self.horizon
        if not elapsed:
            return np.full(k, len(snapshot.waiting) - ready), np.zeros(k), ready
        index = np.clip(np.asarray(elapsed, dtype=np.float64), 0.0, ROWS - 1).astype(np.intp)
        index[len(snapshot.talking) : busy] += ROWS
        index[busy:] += 2 * ROWS
        rows = self._signed[index]
        mean: FloatArray = rows.sum(axis=0) + (len(snapshot.waiting) - ready)
        var = self._var[index].sum(axis=0)
        free = ready - float(rows[:busy, -1].sum())
        return mean, var, free

    def _count_rows(
        self, snapshot: PacingSnapshot, ready: float
    ) -> tuple[FloatArray, FloatArray, float]:
        """:meth:`_gather` for many people: count them per row, one product over rows used."""
        k = self.horizon
        talking, busy = len(snapshot.talking), len(snapshot.talking) + len(snapshot.wrapping)
        elapsed = snapshot.talking + snapshot.wrapping + snapshot.ringing
        # One conversion for everybody; rows past a segment's bins repeat its last row (see
        # _store), so clipping every segment at ROWS - 1 picks the same rows as at its bins.
        values = np.fromiter(elapsed, dtype=np.float64, count=len(elapsed))
        index = np.clip(values, 0.0, ROWS - 1).astype(np.intp)
        index[talking:busy] += ROWS
        index[busy:] += 2 * ROWS
        counts = np.bincount(index, minlength=3 * ROWS)
        used = np.flatnonzero(counts)  # a few hundred distinct rows, not 3 x ROWS
        weights = counts[used].astype(np.float64)
        both = weights @ self._both[used]
        mean: FloatArray = both[:k] + (len(snapshot.waiting) - ready)
        var: FloatArray = both[k:]
        agents = used < 2 * ROWS
        free = ready - float(weights[agents] @ self._signed[used[agents], k - 1])
        return mean, var, free

    def _largest_safe(
        self, mean0: FloatArray, var0: FloatArray, q: FloatArray, theta: float, room: int
    ) -> tuple[int, float, float]:
        """The largest n <= room whose n-th call is abandoned with probability <= theta.

        Returns n, the expected abandonments (max over horizons of E[(D - S)+]) with n
        launched, and the n-th call's abandonment probability.  That probability grows with
        n, so the search only looks between the n where every horizon is safely short of
        agents (probability ~ 0) and the n where the late horizons are surely over (>= 0.5).
        """
        q_live = float(q[-1])
        if room <= 0 or q_live <= 1e-9:
            return 0, float(expected_excess(mean0, var0).max()), 0.0
        v = q * (1.0 - q)
        qs = np.maximum(q, 1e-9)
        sd = np.sqrt(var0 + (-mean0 / qs).clip(0.0, room) * v)
        lo = int(max(0.0, float(((-mean0 - 5.0 * sd) / qs).min())))
        late = q >= 0.5 * q_live
        hi_f = float(((-mean0[late] + 4.0 * sd[late]) / q[late]).min()) + 2.0
        hi = max(lo + 1, min(room, math.ceil(hi_f)))
        lo = min(lo, hi - 1)
        # Most decisions launch a handful: try the first few counts before the whole bracket.
        first_hi = min(hi, lo + 8)
        found = self._scan(mean0, var0, q, v, theta, lo, first_hi, 1)
        if found is not None or first_hi == hi:
            return found or self._scan_end(mean0, var0, q, v, first_hi)
        lo = first_hi
        step = max(1, math.ceil((hi - lo) / 128))
        if step > 1:  # a coarse pass brackets the crossing, a fine pass finds it
            coarse = self._scan(mean0, var0, q, v, theta, lo, hi, step)
            lo = coarse[0] if coarse is not None else lo + ((hi - lo) // step) * step
            hi = min(hi, lo + step)
        found = self._scan(mean0, var0, q, v, theta, lo, hi, 1)
        return found or self._scan_end(mean0, var0, q, v, hi)

    @staticmethod
    def _overflow(
        mean0: FloatArray, var0: FloatArray, q: FloatArray, v: FloatArray, ns: FloatArray
    ) -> FloatArray:
        """Expected abandonments (max over horizons) for each count in ``ns``."""
        over: FloatArray = expected_excess(
            mean0[None, :] + ns[:, None] * q[None, :], var0[None, :] + ns[:, None] * v[None, :]
        ).max(axis=1)
        return over

    def _marginals(
        self,
        mean0: FloatArray,
        var0: FloatArray,
        q: FloatArray,
        v: FloatArray,
        ns: FloatArray,
        step: int,
    ) -> FloatArray:
        """Abandonment probability of the last call of each step ns[i] -> ns[i + 1]."""
        # The call answered live at horizon k is lost if the live answers before it already
        # use up every agent free by k + grace: P(D_k - S_k >= 0), integer-corrected.
        before = ns[1:] - 1.0
        mean = mean0[None, :] + before[:, None] * q[None, :]
        sd = np.sqrt(var0[None, :] + before[:, None] * v[None, :] + 1e-12)
        z = (-CONTINUITY - mean) / sd
        lost = 1.0 - normal_cdf(z)
        result: FloatArray = (lost @ self._dq) / float(q[-1])
        return result

    def _scan(
        self,
        mean0: FloatArray,
        var0: FloatArray,
        q: FloatArray,
        v: FloatArray,
        theta: float,
        lo: int,
        hi: int,
        step: int,
    ) -> tuple[int, float, float] | None:
        """The answer if the marginal crosses ``theta`` between ``lo`` and ``hi``, else None."""
        ns = np.arange(lo, hi + 1, step, dtype=np.float64)
        marginal = self._marginals(mean0, var0, q, v, ns, step)
        bad = np.flatnonzero(marginal > theta)
        if not bad.shape[0]:
            return None
        first_bad = int(bad[0])
        n = lo + first_bad * step
        last = float(marginal[first_bad - 1]) if first_bad > 0 else 0.0
        over = self._overflow(mean0, var0, q, v, np.asarray([float(n)]))
        return n, float(over[0]), last

    def _scan_end(
        self, mean0: FloatArray, var0: FloatArray, q: FloatArray, v: FloatArray, n: int
    ) -> tuple[int, float, float]:
        """The record for launching ``n`` when no count up to ``n`` crossed the threshold."""
        ns = np.asarray([max(n - 1, 0), n], dtype=np.float64)
        over = self._overflow(mean0, var0, q, v, ns)
        return n, float(over[1]), float(over[1] - over[0]) / float(q[-1])
