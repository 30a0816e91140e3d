"""Statistical draws for the simulated populations: what one called party will do.

A plan is drawn once per call from its own random generator (seeded from the simulator's seed
and the call's identity), so a call's fate does not depend on how other calls interleave.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dialer.simpbx.profile import CalledProfile, Dist, Profile


def draw(dist: Dist, rng: random.Random) -> float:
    """One sample of a clipped lognormal (sigma 0 = the median)."""
    value = dist.median if dist.sigma <= 0 else dist.median * math.exp(rng.gauss(0.0, dist.sigma))
    return min(max(value, dist.low), dist.high)


def pick(weights: dict[str, float], rng: random.Random) -> str:
    """A key chosen with probability proportional to its weight."""
    total = sum(w for w in weights.values() if w > 0)
    x = rng.random() * total
    for key, w in weights.items():
        if w <= 0:
            continue
        x -= w
        if x < 0:
            return key
    return next(k for k, w in weights.items() if w > 0)


@dataclass(frozen=True, slots=True)
class PartyPlan:
    """What a called party (or inbound caller) will do, drawn up front."""

    outcome: str  # human, machine, busy, noanswer, congestion, unallocated, unavailable
    ring: float  # seconds from dial to answer / failure
    amd_status: str  # HUMAN, MACHINE, NOTSURE, HANGUP
    amd_cause: str
    amd_time: float
    talk: float  # seconds of conversation once bridged
    patience: float  # seconds a live person waits for an agent
    machine_message: float  # a machine hangs up after this long
    party_hangs_up: bool  # else the agent ends the call when allowed
    dtmf: str  # digits typed at any GET DATA prompt


def _amd(cp: CalledProfile, outcome: str, rng: random.Random) -> tuple[str, str, float]:
    status = pick(cp.amd_machine if outcome == "machine" else cp.amd_human, rng)
    return _amd_fixed(cp, status, rng)


def _amd_fixed(cp: CalledProfile, status: str, rng: random.Random) -> tuple[str, str, float]:
    status = status.upper()
    if status == "HUMAN":
        t = draw(cp.amd_human_time, rng)
        return status, f"HUMAN-{800 + rng.randrange(0, 60)}-800", t
    if status == "MACHINE":
        t = draw(cp.amd_machine_time, rng)
        return status, "LONGGREETING-1500-1500", t
    # NOTSURE: nothing decisive within total_analysis_time [33]
    return "NOTSURE", f"TOOLONG-{int(cp.amd_notsure_time * 1000)}", cp.amd_notsure_time


def plan_call(
    profile: Profile, number: str, rng: random.Random, choices: dict[str, float]
) -> PartyPlan:
    """Draw a called party's behaviour; a pin on the number fixes the outcome."""
    cp = profile.called
    pin = profile.pin_for(number)
    outcome = pin.outcome if pin is not None else pick(cp.outcome_weights, rng)
    if pin is not None and pin.ring_seconds is not None:
        ring = pin.ring_seconds
    elif outcome in ("human", "machine"):
        ring = draw(cp.ring, rng)
    elif outcome == "unavailable":
        ring = draw(cp.noanswer_after, rng)
    elif outcome == "noanswer":
        ring = 3600.0  # rings until the Originate's Timeout
    else:
        ring = draw(cp.busy_after, rng)
    if pin is not None and pin.amd:
        amd_status, amd_cause, amd_time = _amd_fixed(cp, pin.amd, rng)
    else:
        amd_status, amd_cause, amd_time = _amd(cp, outcome, rng)
    if pin is None and outcome in ("human", "machine") and rng.random() < cp.hangup_during_amd:
        amd_time = amd_time * rng.random()
        amd_status, amd_cause = "HANGUP", ""
    if pin is not None and pin.talk_seconds is not None:
        talk = pin.talk_seconds
    elif cp.talk_short_share > 0 and rng.random() < cp.talk_short_share:
        talk = draw(cp.talk_short, rng)
    else:
        talk = draw(cp.talk, rng)
    return PartyPlan(
        outcome=outcome,
        ring=ring,
        amd_status=amd_status,
        amd_cause=amd_cause,
        amd_time=amd_time,
        talk=talk,
        patience=draw(cp.patience, rng),
        machine_message=draw(cp.machine_message, rng),
        party_hangs_up=rng.random() < cp.party_hangs_up,
        dtmf=pick(choices, rng) if choices else "1",
    )


def plan_inbound(profile: Profile, rng: random.Random) -> PartyPlan:
    """Draw an inbound caller's behaviour (a person who called us: no ring, no AMD)."""
    ip = profile.inbound
    return PartyPlan(
        outcome="human",
        ring=0.0,
        amd_status="",
        amd_cause="",
        amd_time=0.0,
        talk=draw(ip.talk, rng),
        patience=draw(ip.patience, rng),
        machine_message=0.0,
        party_hangs_up=rng.random() < profile.called.party_hangs_up,
        dtmf=pick(ip.choices, rng) if ip.choices else "1",
    )
