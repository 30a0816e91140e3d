"""The pacing simulation: the cap holds over simulated days; the baseline replica; the bench."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from dialer.cli import main
from dialer.pacing import PacingSnapshot
from dialer.pacing_sim.bench import chart, run_days, run_matrix, table
from dialer.pacing_sim.engine import simulate_day
from dialer.pacing_sim.policies import AdaptiveReplica, make_policy
from dialer.pacing_sim.scenarios import CORE

SHORT = replace(CORE, name="ci-core", days=2, day_seconds=2 * 3600.0, login_spread=300.0)


def test_predictive_keeps_the_cap_every_day_and_beats_progressive() -> None:
    predictive = run_days(SHORT, "predictive", seed=11)
    progressive = run_days(SHORT, "progressive", seed=11)
    assert predictive.days == 2
    assert all(rate <= 0.03 for rate in predictive.day_abandon), predictive.day_abandon
    assert predictive.abandon_rate > 0.0  # it does spend the budget
    assert progressive.abandon_rate == 0.0
    assert predictive.occupancy > progressive.occupancy + 0.08
    assert predictive.dials_per_agent_hour > progressive.dials_per_agent_hour


def test_simulation_is_reproducible() -> None:
    tiny = replace(SHORT, agents=6, day_seconds=1800.0)
    one = simulate_day(tiny, make_policy("ratio2"), day=3, seed=5)
    two = simulate_day(tiny, make_policy("ratio2"), day=3, seed=5)
    other_day = simulate_day(tiny, make_policy("ratio2"), day=4, seed=5)
    fields = ("logged_seconds", "talk_seconds", "dials", "live", "abandoned")
    assert [getattr(one, f) for f in fields] == [getattr(two, f) for f in fields]
    assert [getattr(one, f) for f in fields] != [getattr(other_day, f) for f in fields]


def test_amd_false_positives_are_counted_apart() -> None:
    sc = replace(SHORT, agents=8, day_seconds=1800.0, amd_false_positive=0.5)
    day = simulate_day(sc, make_policy("progressive"), seed=2)
    assert day.amd_false_positives > 0 and day.live > 0


def test_adaptive_replica_level_rises_with_idle_agents_and_is_progressive_at_one() -> None:
    replica = AdaptiveReplica()
    snap = PacingSnapshot(now=0.0, ready_agents=3, talking=(5.0,) * 5, ringing=(1.0,))
    assert replica.decide(snap) == 3 + 5 - 1 - 5  # level 1: ready - ringing
    for second in range(1, 31):
        replica.decide(
            PacingSnapshot(now=float(second), ready_agents=6, talking=(5.0,) * 4, ringing=())
        )
    assert replica.level > 1.0
    assert replica.last_decision is not None and replica.last_decision.launch > 6


def test_bench_runs_every_policy_and_draws_the_chart(tmp_path: Path) -> None:
    tiny = replace(CORE, name="tiny", agents=5, days=1, day_seconds=1200.0, login_spread=0.0)
    summaries = run_matrix([tiny], workers=1)
    assert [s.policy for s in summaries] == ["predictive", "progressive", "ratio2", "vicidial"]
    text = table(summaries)
    assert "vicidial" in text and "occupancy" in text
    assert table(summaries, markdown=True).startswith("| scenario |")
    png = chart(summaries, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_an_unknown_scenario() -> None:
    result = CliRunner().invoke(main, ["bench", "pacing", "--scenario", "nope"])
    assert result.exit_code != 0
    assert "unknown scenario" in result.output


def test_chunked_days_add_up_to_the_whole_run() -> None:
    tiny = replace(CORE, name="tiny2", agents=5, days=3, day_seconds=900.0, login_spread=0.0)
    whole = run_days(tiny, "progressive", seed=4)
    (chunked,) = run_matrix([tiny], ["progressive"], seed=4, workers=1, chunk_days=1)
    assert chunked.days == 3
    assert chunked.day_occupancy == whole.day_occupancy
    assert chunked.dials_per_agent_hour == whole.dials_per_agent_hour
