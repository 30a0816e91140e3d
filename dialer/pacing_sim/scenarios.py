"""The populations the pacing benchmark dials: core, the grid and the stress scenarios."""

from __future__ import annotations

from dataclasses import dataclass, replace

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated campaign: agents, the people called, and what happens during the day."""

    name: str
    agents: int = 35
    days: int = 20
    day_seconds: float = 8 * HOUR
    answer_rate: float = 0.45  # share of dials answered (person or machine)
    live_share: float = 0.55  # share of answers that are people
    ring_answer_mean: float = 8.0  # seconds from launch to classified answer (AMD included)
    ring_answer_cv: float = 0.5
    no_answer_timeout: float = 20.0
    busy_share: float = 0.10  # of unanswered calls
    congestion_share: float = 0.03
    failed_share: float = 0.02
    talk_mean: float = 150.0
    talk_cv: float = 1.0
    wrap_mean: float = 30.0
    wrap_cv: float = 0.5
    abandon_after: float = 2.0
    login_spread: float = 600.0  # agents log in over the first ten minutes
    answer_drop_at: float | None = None  # fraction of the day when the answer rate halves
    lunch_at: float | None = None  # fraction of the day when a share of agents pauses
    lunch_share: float = 0.3
    lunch_seconds: float = 1800.0
    short_talk_share: float = 0.0  # bimodal talk: this share of calls lasts ~15 s
    short_talk_mean: float = 15.0
    amd_false_positive: float = 0.0  # share of live answers AMD wrongly calls a machine
    note: str = ""

    @property
    def handle_mean(self) -> float:
        """Mean talk + wrap-up seconds."""
        return self.talk_mean + self.wrap_mean


CORE = Scenario(
    "core", note="35 agents, 45% answered, 55% live, talk 150 s (CV 1), wrap 30 s, 20 days"
)


def stress_scenarios(days: int) -> list[Scenario]:
    """The stress scenarios of the benchmark, each ``days`` long."""
    base = replace(CORE, days=days)
    return [
        replace(base, name="answer-drop", answer_drop_at=0.5, note="answer rate halves mid-day"),
        replace(base, name="lunch-pause", lunch_at=0.5, note="30% of agents pause at once"),
        replace(base, name="bimodal-talk", short_talk_share=0.4, note="40% of calls ~15 s"),
        replace(base, name="amd-fp", amd_false_positive=0.10, note="AMD hangs up 10% of people"),
        replace(base, name="login-burst", login_spread=0.0, note="all agents log in at once"),
        replace(base, name="team-of-5", agents=5, note="a team of 5"),
    ]


def grid_scenarios(days: int, hours: float = 2.0) -> list[Scenario]:
    """agents 5/10/20/35/50 x live share 10/25/50% x handle 60/180/420 s, ``days`` each.

    Grid days are ``hours`` long (default 2): 45 cells at 10% live share dial a lot.
    """
    out = []
    for agents in (5, 10, 20, 35, 50):
        for live in (0.10, 0.25, 0.50):
            for handle in (60.0, 180.0, 420.0):
                out.append(
                    replace(
                        CORE,
                        name=f"grid a{agents} l{round(live * 100)} h{round(handle)}",
                        agents=agents,
                        live_share=live,
                        talk_mean=handle * 5.0 / 6.0,
                        wrap_mean=handle / 6.0,
                        days=days,
                        day_seconds=hours * HOUR,
                        note="grid",
                    )
                )
    return out
