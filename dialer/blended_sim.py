"""A discrete-event simulation of blended work: one predictive campaign plus inbound callers.

It drives the real pieces: ``dialer.pacing`` (through its documented contract) for outbound
launches, and :class:`~dialer.domain.inbound_queue.InboundQueue` with :func:`plan_blend` for
inbound callers.  The engine follows the same order when an agent becomes free:

1. an answered outbound call already waiting for an agent (its 2-second clock is the law);
2. waiting inbound callers (longest-idle agent, skills, priority/FIFO);
3. otherwise the agent is READY and the pacer may launch calls for them, unless an inbound
   caller has waited longer than the hold threshold.

Agents reserved for inbound are in the pacer's ``talking`` from the reservation on.  The same
random streams (arrivals, people called, durations) feed every mode, so modes differ only by
their rules.  ``dialer bench blended`` prints blended work against two teams split in advance.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass

from dialer.domain.inbound_queue import (
    InboundQueue,
    LeaveReason,
    QueuedCaller,
    ReadyAgent,
    plan_blend,
)

HOUR = 3600.0
FREE, TALK, WRAP = range(3)
# event kinds
CLASSIFY, ABANDON, TALK_END, WRAP_END, ARRIVE, JOIN, PATIENCE = range(7)


@dataclass(frozen=True, slots=True)
class BlendScenario:
    """Who calls in, who is called, how long things take."""

    agents: int = 35
    hours: float = 4.0
    inbound_agents: int = 0  # > 0: a split team (these take only inbound; the rest only outbound)
    hold_outbound_after: float | None = 30.0
    target_abandon_rate: float = 0.03
    abandon_after: float = 2.0
    # outbound population
    answer_rate: float = 0.45
    live_share: float = 0.55
    ring_mean: float = 8.0
    no_answer_timeout: float = 20.0
    out_talk_mean: float = 150.0
    # inbound population
    inbound_per_hour: float = 120.0
    to_queue_share: float = 0.6  # callers who ask for a person (the rest self-serve in the IVR)
    ivr_seconds: float = 25.0  # mean time in the IVR before the queue
    hindi_share: float = 0.6
    hindi_agents_share: float = 0.8
    in_talk_mean: float = 180.0
    patience_mean: float = 120.0  # mean wait before a caller hangs up
    max_wait: float = 180.0  # then callback or voicemail is offered (they leave)
    service_level_seconds: float = 20.0
    skill_relax_seconds: float | None = 45.0
    wrap_mean: float = 20.0
    tick: float = 1.0


@dataclass(frozen=True, slots=True)
class BlendResult:
    """The figures of one run."""

    label: str
    dials: int
    live: int
    abandoned: int
    connected_out: int
    inbound_offered: int
    inbound_answered: int
    inbound_abandoned: int
    inbound_left: int
    average_wait: float
    p90_wait: float
    service_level: float
    occupancy: float
    held_seconds: float

    @property
    def abandon_rate(self) -> float:
        """Outbound abandoned / live answered."""
        return self.abandoned / self.live if self.live else 0.0


def _lognormal(rng: random.Random, mean: float, cv: float = 0.8) -> float:
    sigma2 = math.log(1.0 + cv * cv)
    return math.exp(math.log(mean) - sigma2 / 2.0 + math.sqrt(sigma2) * rng.gauss(0.0, 1.0))


@dataclass(slots=True)
class _Agent:
    name: str
    skills: frozenset[str]
    inbound: bool
    outbound: bool
    state: int = FREE
    since: float = 0.0
    idle_since: float = 0.0
    wrap: float = 0.0


class _Sim:
    """The mutable state of one run."""

    def __init__(
        self, sc: BlendScenario, pacer: object, pacing: object, label: str, seed: int
    ) -> None:
        self.sc, self.pacer, self.pacing, self.label = sc, pacer, pacing, label
        self.heap: list[tuple[float, int, int, int]] = []
        self.seq = 0
        self.end = sc.hours * HOUR
        self.out_rng = random.Random(f"{seed}:outbound")
        self.in_rng = random.Random(f"{seed}:inbound")
        self.queue = InboundQueue(sc.service_level_seconds, sc.skill_relax_seconds)
        hindi = round(sc.agents * sc.hindi_agents_share)
        split = sc.inbound_agents > 0
        self.agents: list[_Agent] = []
        for i in range(sc.agents):
            skills = frozenset({"en", "hi"}) if i < hindi else frozenset({"en"})
            inbound = self._is_inbound_member(i) if split else True
            outbound = not inbound if split else True
            self.agents.append(_Agent(f"a{i:02d}", skills, inbound, outbound))
        self.ringing: dict[int, tuple[float, bool, bool, float, float]] = {}
        self.waiting_out: deque[tuple[int, float, float, float]] = deque()
        self.waiting_ids: set[int] = set()
        self.callers: dict[int, tuple[float, float, float]] = {}  # id -> (talk, wrap, patience)
        self.langs: dict[int, str] = {}
        self.next_id = 0
        self.dials = self.live = self.abandoned = self.connected_out = 0
        self.busy_seconds = 0.0
        self.logged_seconds = sc.agents * self.end
        self.held_seconds = 0.0

    def _is_inbound_member(self, i: int) -> bool:
        # spread the inbound team across the skill mix: every k-th agent
        n, k = self.sc.agents, self.sc.inbound_agents
        return any(round(j * n / k) == i for j in range(k))

    # -- plumbing

    def push(self, at: float, kind: int, who: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, who))

    def observe(self, name: str, **kw: float | bool | str) -> None:
        event = getattr(self.pacing, name)(**kw)
        self.pacer.observe(event)  # type: ignore[attr-defined]

    def set_state(self, a: _Agent, state: int, now: float) -> None:
        if a.state in (TALK, WRAP):
            self.busy_seconds += min(now, self.end) - min(a.since, self.end)
        a.state = state
        a.since = now
        if state == FREE:
            a.idle_since = now

    # -- the run

    def run(self) -> BlendResult:
        for a in self.agents:
            a.since = a.idle_since = 0.0
        self.push(self.in_rng.expovariate(self.sc.inbound_per_hour / HOUR), ARRIVE, 0)
        next_tick = 0.0
        while self.heap or next_tick < self.end:
            if next_tick < self.end and (not self.heap or next_tick <= self.heap[0][0]):
                self.tick(next_tick)
                next_tick += self.sc.tick
                continue
            at, _, kind, who = heapq.heappop(self.heap)
            self.handle(at, kind, who)
        for a in self.agents:
            self.set_state(a, FREE, self.end)
        f = self.queue.figures(self.end)
        return BlendResult(
            label=self.label,
            dials=self.dials,
            live=self.live,
            abandoned=self.abandoned,
            connected_out=self.connected_out,
            inbound_offered=f.offered,
            inbound_answered=f.answered,
            inbound_abandoned=f.abandoned,
            inbound_left=f.left,
            average_wait=f.average_wait,
            p90_wait=f.p90_wait,
            service_level=f.service_level,
            occupancy=self.busy_seconds / self.logged_seconds,
            held_seconds=self.held_seconds,
        )

    def ready(self) -> list[ReadyAgent]:
        return [
            ReadyAgent(a.name, a.idle_since, a.skills, a.inbound, a.outbound)
            for a in self.agents
            if a.state == FREE
        ]

    def agent(self, name: str) -> _Agent:
        return self.agents[int(name[1:])]

    def snapshot(self, now: float) -> object:
        out = [a for a in self.agents if a.outbound]
        return self.pacing.PacingSnapshot(  # type: ignore[attr-defined]
            now=now,
            ready_agents=0,  # filled in by tick()
            talking=tuple(now - a.since for a in out if a.state == TALK),
            wrapping=tuple(now - a.since for a in out if a.state == WRAP),
            ringing=tuple(now - c[0] for c in self.ringing.values()),
            # answered outbound calls waiting, and (blended) inbound callers still in the
            # queue: each takes the next free agent, as EngineInbound.pacing_view tells the pacer
            waiting=tuple(now - w[1] for w in self.waiting_out)
            + ((0.0,) * len(self.queue) if self.sc.inbound_agents == 0 else ()),
        )

    def tick(self, now: float) -> None:
        for caller in self.queue.overdue(now, self.sc.max_wait):
            self.queue.leave(caller.call_id, now, LeaveReason.TIMEOUT)
        plan = plan_blend(self.queue, self.ready(), now, self.sc.hold_outbound_after)
        for m in plan.matches:
            self.start_inbound(m.agent.agent_id, m.caller.call_id, now)
        if plan.hold_outbound:
            self.held_seconds += self.sc.tick
            return
        snap = self.snapshot(now)
        snap = type(snap)(  # type: ignore[call-arg]
            now=now,
            ready_agents=len(plan.outbound_ready),
            talking=snap.talking,  # type: ignore[attr-defined]
            wrapping=snap.wrapping,  # type: ignore[attr-defined]
            ringing=snap.ringing,  # type: ignore[attr-defined]
            waiting=snap.waiting,  # type: ignore[attr-defined]
        )
        n = int(self.pacer.decide(snap))  # type: ignore[attr-defined]
        for _ in range(max(0, n)):
            self.launch(now)

    def launch(self, now: float) -> None:
        rng, sc = self.out_rng, self.sc
        answered = rng.random() < sc.answer_rate
        live = answered and rng.random() < sc.live_share
        ring = _lognormal(rng, sc.ring_mean, 0.5) if answered else sc.no_answer_timeout
        talk = _lognormal(rng, sc.out_talk_mean, 1.0)
        wrap = _lognormal(rng, sc.wrap_mean, 0.5)
        cid = self.next_id
        self.next_id += 1
        self.ringing[cid] = (now, answered, live, talk, wrap)
        self.dials += 1
        self.observe("CallLaunched", at=now)
        self.push(now + ring, CLASSIFY, cid)

    def handle(self, at: float, kind: int, who: int) -> None:
        if kind == CLASSIFY:
            self.classify(at, who)
        elif kind == ABANDON:
            if who in self.waiting_ids:
                self.waiting_ids.discard(who)
                self.waiting_out = deque(w for w in self.waiting_out if w[0] != who)
                self.abandoned += 1
                self.observe("CallAbandoned", at=at, wait_seconds=self.sc.abandon_after)
        elif kind == TALK_END:
            a = self.agents[who]
            talked = at - a.since
            self.set_state(a, WRAP, at)
            if a.outbound:
                self.observe("TalkEnded", at=at, talk_seconds=talked)
            self.push(at + a.wrap, WRAP_END, who)
        elif kind == WRAP_END:
            a = self.agents[who]
            if a.outbound:
                self.observe("WrapEnded", at=at, wrap_seconds=a.wrap)
            self.free(a, at)
        elif kind == ARRIVE:
            self.arrive(at)
        elif kind == JOIN:
            self.join(at, who)
        elif kind == PATIENCE:
            cid = str(who)
            if cid in self.queue and self.queue.position(cid) > 0:
                self.queue.leave(cid, at, LeaveReason.ABANDONED)

    def classify(self, at: float, cid: int) -> None:
        launched, answered, live, talk, wrap = self.ringing.pop(cid)
        if not answered:
            self.observe("CallUnanswered", at=at, ring_seconds=at - launched, reason="no_answer")
            return
        self.observe("CallAnswered", at=at, ring_seconds=at - launched, live=live)
        if not live:
            return
        self.live += 1
        free = [a for a in self.agents if a.state == FREE and a.outbound]
        if free:
            best = min(free, key=lambda a: (a.idle_since, a.name))
            self.connect_out(best, at, 0.0, talk, wrap)
        else:
            self.waiting_out.append((cid, at, talk, wrap))
            self.waiting_ids.add(cid)
            self.push(at + self.sc.abandon_after, ABANDON, cid)

    def connect_out(self, a: _Agent, at: float, waited: float, talk: float, wrap: float) -> None:
        self.connected_out += 1
        self.observe("CallConnected", at=at, wait_seconds=waited)
        self.set_state(a, TALK, at)
        a.wrap = wrap
        self.push(at + talk, TALK_END, int(a.name[1:]))

    def free(self, a: _Agent, at: float) -> None:
        if a.outbound and self.waiting_out:  # 1. answered outbound calls first
            cid, answered_at, talk, wrap = self.waiting_out.popleft()
            self.waiting_ids.discard(cid)
            self.connect_out(a, at, at - answered_at, talk, wrap)
            return
        self.set_state(a, FREE, at)
        plan = plan_blend(self.queue, self.ready(), at, self.sc.hold_outbound_after)
        for m in plan.matches:  # 2. inbound callers before any new outbound launch
            self.start_inbound(m.agent.agent_id, m.caller.call_id, at)

    def arrive(self, at: float) -> None:
        rng, sc = self.in_rng, self.sc
        nxt = at + rng.expovariate(sc.inbound_per_hour / HOUR)
        if nxt < self.end:
            self.push(nxt, ARRIVE, 0)
        wants_person = rng.random() < sc.to_queue_share
        ivr = rng.uniform(0.3, 1.7) * sc.ivr_seconds
        talk = _lognormal(rng, sc.in_talk_mean, 0.8)
        wrap = _lognormal(rng, sc.wrap_mean, 0.5)
        patience = rng.expovariate(1.0 / sc.patience_mean)
        lang = "hi" if rng.random() < sc.hindi_share else "en"
        if not wants_person:
            return
        cid = self.next_id
        self.next_id += 1
        self.callers[cid] = (talk, wrap, patience)
        self.langs[cid] = lang
        self.push(at + ivr, JOIN, cid)

    def join(self, at: float, cid: int) -> None:
        _, _, patience = self.callers[cid]
        self.queue.enqueue(QueuedCaller(str(cid), at, 0, self.langs[cid]))
        self.push(at + patience, PATIENCE, cid)
        plan = plan_blend(self.queue, self.ready(), at, self.sc.hold_outbound_after)
        for m in plan.matches:
            self.start_inbound(m.agent.agent_id, m.caller.call_id, at)

    def start_inbound(self, agent_name: str, caller_id: str, at: float) -> None:
        # the bridge forms at once in the simulation: reserved and connected together
        self.queue.connected(caller_id, at)
        a = self.agent(agent_name)
        talk, wrap, _ = self.callers.pop(int(caller_id))
        self.set_state(a, TALK, at)
        a.wrap = wrap
        self.push(at + talk, TALK_END, int(a.name[1:]))


def run_blended(
    sc: BlendScenario, label: str, seed: int = 1, mode: str = "predictive"
) -> BlendResult:
    """Simulate ``sc`` with a fresh pacer (``mode`` as for make_pacer); return its figures."""
    import dialer.pacing as pacing

    options: dict[str, float] = {}
    if mode == "predictive":
        options = {
            "target_abandon_rate": sc.target_abandon_rate,
            "abandon_after_seconds": sc.abandon_after,
        }
    pacer = pacing.make_pacer(mode, **options)
    return _Sim(sc, pacer, pacing, label, seed).run()


def compare(
    base: BlendScenario, loads: tuple[float, ...], split_inbound_agents: int, seed: int = 1
) -> list[str]:
    """Blended (with and without the outbound hold) against split teams, per inbound load."""
    from dataclasses import replace

    lines = [
        f"blended run: {base.agents} agents, {base.hours:g} h simulated per mode, predictive "
        f"pacer at {base.target_abandon_rate:.0%} target, inbound SL threshold "
        f"{base.service_level_seconds:g} s, seed {seed}",
        f"{'mode':<26}{'in/h':>6}{'dials':>7}{'live':>6}{'aband':>7}{'rate':>7}"
        f"{'out/h':>7}{'in ans':>7}{'in ab':>6}{'left':>5}{'avgW':>6}{'p90W':>6}"
        f"{'SL':>7}{'occ':>6}{'held':>6}",
    ]
    for load in loads:
        modes = [
            (f"blended hold>{base.hold_outbound_after or 0:g}s", replace(base)),
            ("blended, no hold", replace(base, hold_outbound_after=None)),
            (
                f"split {split_inbound_agents} in/{base.agents - split_inbound_agents} out",
                replace(base, inbound_agents=split_inbound_agents, hold_outbound_after=None),
            ),
        ]
        results = []
        for label, sc in modes:
            r = run_blended(replace(sc, inbound_per_hour=load), label, seed)
            results.append(r)
            lines.append(
                f"{label:<26}{load:>6.0f}{r.dials:>7}{r.live:>6}{r.abandoned:>7}"
                f"{r.abandon_rate:>7.2%}{r.connected_out / base.hours:>7.0f}"
                f"{r.inbound_answered:>7}{r.inbound_abandoned:>6}{r.inbound_left:>5}"
                f"{r.average_wait:>6.1f}{r.p90_wait:>6.1f}{r.service_level:>7.1%}"
                f"{r.occupancy:>6.1%}{r.held_seconds:>6.0f}"
            )
        blended, split = results[0], results[2]
        lines.append(
            f"  ratios at {load:g}/h, blended vs split: outbound connects "
            f"{blended.connected_out / max(1, split.connected_out):.2f}x, occupancy "
            f"{blended.occupancy / max(1e-9, split.occupancy):.2f}x, inbound service level "
            f"{blended.service_level:.1%} vs {split.service_level:.1%}"
        )
    lines.append(
        "rate = outbound abandoned / live answered (cap: the target); SL = inbound answered "
        "within the threshold / (answered + abandoned or left after it); held = seconds with "
        "outbound launches held for a long inbound wait"
    )
    return lines
