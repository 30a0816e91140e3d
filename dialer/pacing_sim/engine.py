"""A discrete-event simulation of one campaign day that drives any pacer through its contract.

Common random numbers: the n-th call launched on a given day meets the same person (answer,
ring time, live or machine, talk and wrap-up time) whatever the policy, and agents pause at
the same moments, so policies differ only by their decisions.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from dataclasses import dataclass

from dialer.pacing import (
    CallAbandoned,
    CallAnswered,
    CallConnected,
    CallLaunched,
    CallUnanswered,
    Pacer,
    PacingSnapshot,
    TalkEnded,
    WrapEnded,
)
from dialer.pacing_sim.scenarios import Scenario

OFF, READY, TALKING, WRAPPING, PAUSED = range(5)
LOGIN, CLASSIFY, ABANDON, TALK_END, WRAP_END, LUNCH, UNPAUSE = range(7)
LINES_PER_AGENT = 12  # the trunk: calls in flight beyond this are not launched


@dataclass(frozen=True, slots=True)
class DayResult:
    """What one simulated day produced."""

    day: int
    agents: int
    logged_seconds: float  # logged in and not paused, inside the day
    talk_seconds: float
    wrap_seconds: float
    dials: int
    live: int  # live answers the pacer saw (detected by AMD as people)
    abandoned: int
    amd_false_positives: int  # people AMD hung up on: invisible to the pacer
    decide_p50_us: float
    decide_p99_us: float

    @property
    def occupancy(self) -> float:
        """(talk + wrap-up) / time logged in and not paused."""
        return (self.talk_seconds + self.wrap_seconds) / self.logged_seconds

    @property
    def abandon_rate(self) -> float:
        """Abandoned / live answers."""
        return self.abandoned / self.live if self.live else 0.0


@dataclass(frozen=True, slots=True)
class _Lead:
    answered: bool
    ring: float
    live: bool
    amd_false_positive: bool
    reason: str
    talk: float
    wrap: float


def _lognormal(mean: float, cv: float, z: float) -> float:
    sigma2 = math.log(1.0 + cv * cv)
    return math.exp(math.log(mean) - sigma2 / 2.0 + math.sqrt(sigma2) * z)


def draw_lead(rng: random.Random, sc: Scenario, answer_rate: float) -> _Lead:
    """The next person on the list; always draws the same amount of randomness."""
    u_answer, u_live, u_amd, u_reason, u_short = (rng.random() for _ in range(5))
    z_ring, z_talk, z_wrap = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
    answered = u_answer < answer_rate
    live = answered and u_live < sc.live_share
    fp = live and u_amd < sc.amd_false_positive
    if answered:
        ring = min(max(_lognormal(sc.ring_answer_mean, sc.ring_answer_cv, z_ring), 1.0), 19.5)
        reason = ""
    elif u_reason < sc.busy_share:
        ring, reason = min(_lognormal(4.0, 0.5, z_ring), sc.no_answer_timeout), "busy"
    elif u_reason < sc.busy_share + sc.congestion_share:
        ring, reason = 1.0, "congestion"
    elif u_reason < sc.busy_share + sc.congestion_share + sc.failed_share:
        ring, reason = 0.5, "failed"
    else:
        ring, reason = sc.no_answer_timeout, "no_answer"
    if u_short < sc.short_talk_share:
        talk = _lognormal(sc.short_talk_mean, 0.3, z_talk)
    else:
        talk = _lognormal(sc.talk_mean, sc.talk_cv, z_talk)
    wrap = _lognormal(sc.wrap_mean, sc.wrap_cv, z_wrap)
    return _Lead(answered, ring, live and not fp, fp, reason, talk, wrap)


class _Day:
    """The mutable state of one simulated day."""

    def __init__(
        self, sc: Scenario, pacer: Pacer, day: int, seed: int, origin: float, tick: float
    ) -> None:
        self.sc = sc
        self.pacer = pacer
        self.day = day
        self.t0 = origin
        self.end = origin + sc.day_seconds
        self.tick = tick
        self.leads = random.Random(f"{seed}:{sc.name}:{day}:leads")
        self.people = random.Random(f"{seed}:{sc.name}:{day}:agents")
        self.heap: list[tuple[float, int, int, int]] = []
        self.seq = 0
        n = sc.agents
        self.state = [OFF] * n
        self.since = [0.0] * n
        self.pending_pause = [False] * n
        self.agent_wrap = [0.0] * n
        self.ready: deque[int] = deque()
        self.calls: dict[int, tuple[float, _Lead]] = {}  # ringing: id -> (launched, lead)
        self.waiting: deque[tuple[int, float, _Lead]] = deque()  # (id, answered at, lead)
        self.waiting_ids: set[int] = set()
        self.next_call = 0
        self.totals = [0.0] * 5
        self.dials = self.live = self.abandoned = self.amd_fp = 0
        self.latencies: list[int] = []

    # ---------------------------------------------------------------- plumbing

    def push(self, at: float, kind: int, who: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, who))

    def enter(self, agent: int, state: int, now: float) -> None:
        old = self.state[agent]
        start = min(max(self.since[agent], self.t0), self.end)
        stop = min(max(now, self.t0), self.end)
        self.totals[old] += stop - start
        self.state[agent] = state
        self.since[agent] = now

    # ---------------------------------------------------------------- the day

    def run(self) -> DayResult:
        sc = self.sc
        order = list(range(sc.agents))
        self.people.shuffle(order)
        for rank, agent in enumerate(order):
            offset = sc.login_spread * rank / max(1, sc.agents) if sc.login_spread else 0.0
            self.push(self.t0 + offset, LOGIN, agent)
        if sc.lunch_at is not None:
            self.push(self.t0 + sc.lunch_at * sc.day_seconds, LUNCH, -1)
        next_tick = self.t0
        heap = self.heap
        while heap or next_tick < self.end:
            if next_tick < self.end and (not heap or next_tick < heap[0][0]):
                self.decide(next_tick)
                next_tick += self.tick
                continue
            at, _, kind, who = heapq.heappop(heap)
            self.handle(at, kind, who)
        for agent in range(sc.agents):
            self.enter(agent, OFF, self.end)
        lat = sorted(self.latencies) or [0]
        return DayResult(
            day=self.day,
            agents=sc.agents,
            logged_seconds=self.totals[READY] + self.totals[TALKING] + self.totals[WRAPPING],
            talk_seconds=self.totals[TALKING],
            wrap_seconds=self.totals[WRAPPING],
            dials=self.dials,
            live=self.live,
            abandoned=self.abandoned,
            amd_false_positives=self.amd_fp,
            decide_p50_us=lat[len(lat) // 2] / 1000.0,
            decide_p99_us=lat[min(len(lat) - 1, (len(lat) * 99) // 100)] / 1000.0,
        )

    def snapshot(self, now: float) -> PacingSnapshot:
        talking: list[float] = []
        wrapping: list[float] = []
        for agent, state in enumerate(self.state):
            if state == TALKING:
                talking.append(now - self.since[agent])
            elif state == WRAPPING:
                wrapping.append(now - self.since[agent])
        return PacingSnapshot(
            now=now,
            ready_agents=len(self.ready),
            talking=tuple(talking),
            wrapping=tuple(wrapping),
            ringing=tuple(now - launched for launched, _ in self.calls.values()),
            waiting=tuple(now - answered for _, answered, _ in self.waiting),
        )

    def decide(self, now: float) -> None:
        snap = self.snapshot(now)
        started = time.perf_counter_ns()
        n = self.pacer.decide(snap)
        self.latencies.append(time.perf_counter_ns() - started)
        lines = LINES_PER_AGENT * self.sc.agents + 10 - len(self.calls) - len(self.waiting)
        for _ in range(max(0, min(n, lines))):
            self.launch(now)

    def launch(self, now: float) -> None:
        sc = self.sc
        rate = sc.answer_rate
        if sc.answer_drop_at is not None and now >= self.t0 + sc.answer_drop_at * sc.day_seconds:
            rate *= 0.5
        lead = draw_lead(self.leads, sc, rate)
        call = self.next_call
        self.next_call += 1
        self.calls[call] = (now, lead)
        self.dials += 1
        self.pacer.observe(CallLaunched(at=now))
        self.push(now + lead.ring, CLASSIFY, call)

    def handle(self, at: float, kind: int, who: int) -> None:
        if kind == CLASSIFY:
            self.classify(at, who)
        elif kind == TALK_END:
            talked = at - self.since[who]
            self.enter(who, WRAPPING, at)
            self.pacer.observe(TalkEnded(at=at, talk_seconds=talked))
            self.push(at + self.agent_wrap[who], WRAP_END, who)
        elif kind == WRAP_END:
            self.pacer.observe(WrapEnded(at=at, wrap_seconds=self.agent_wrap[who]))
            self.free(who, at)
        elif kind == ABANDON:
            if who in self.waiting_ids:
                self.waiting_ids.discard(who)
                self.waiting = deque(w for w in self.waiting if w[0] != who)
                self.abandoned += 1
                self.pacer.observe(CallAbandoned(at=at, wait_seconds=self.sc.abandon_after))
        elif kind == LOGIN:
            self.free(who, at)
        elif kind == UNPAUSE:
            self.free(who, at)
        elif kind == LUNCH:
            self.lunch(at)

    def classify(self, at: float, call: int) -> None:
        launched, lead = self.calls.pop(call)
        ring = at - launched
        if not lead.answered:
            reason = lead.reason
            self.pacer.observe(CallUnanswered(at=at, ring_seconds=ring, reason=reason))  # type: ignore[arg-type]
            return
        self.pacer.observe(CallAnswered(at=at, ring_seconds=ring, live=lead.live))
        if lead.amd_false_positive:
            self.amd_fp += 1
        if not lead.live:
            return
        self.live += 1
        if self.ready:
            self.connect(self.ready.popleft(), lead, at, 0.0)
        else:
            self.waiting.append((call, at, lead))
            self.waiting_ids.add(call)
            self.push(at + self.sc.abandon_after, ABANDON, call)

    def connect(self, agent: int, lead: _Lead, at: float, waited: float) -> None:
        self.pacer.observe(CallConnected(at=at, wait_seconds=waited))
        self.enter(agent, TALKING, at)
        self.agent_wrap[agent] = lead.wrap
        self.push(at + lead.talk, TALK_END, agent)

    def free(self, agent: int, at: float) -> None:
        """The agent is available: lunch if asked, else the oldest waiting caller, else ready."""
        if self.pending_pause[agent]:
            self.pending_pause[agent] = False
            self.enter(agent, PAUSED, at)
            self.push(at + self.sc.lunch_seconds, UNPAUSE, agent)
            return
        if self.waiting:
            call, answered, lead = self.waiting.popleft()
            self.waiting_ids.discard(call)
            self.connect(agent, lead, at, at - answered)
            return
        self.enter(agent, READY, at)
        self.ready.append(agent)
        if at < self.end:  # an engine asks the pacer at once when an agent turns ready
            self.decide(at)

    def lunch(self, at: float) -> None:
        sc = self.sc
        chosen = self.people.sample(range(sc.agents), round(sc.lunch_share * sc.agents))
        for agent in chosen:
            if self.state[agent] == READY:
                self.ready.remove(agent)
                self.enter(agent, PAUSED, at)
                self.push(at + sc.lunch_seconds, UNPAUSE, agent)
            elif self.state[agent] in (TALKING, WRAPPING):
                self.pending_pause[agent] = True  # they go to lunch when this call is done


def simulate_day(
    scenario: Scenario,
    pacer: Pacer,
    *,
    day: int = 0,
    seed: int = 1,
    origin: float = 1000.0,
    tick: float = 1.0,
) -> DayResult:
    """Run one day of ``scenario`` against ``pacer`` (a fresh one per day, as the engine does)."""
    sim = _Day(scenario, pacer, day, seed, origin, tick)
    return sim.run()
