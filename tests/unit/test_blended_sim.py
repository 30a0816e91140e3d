"""The blended simulation: the real queue and blending rules with a pacer, figures that add up."""

from __future__ import annotations

from dialer.blended_sim import BlendScenario, run_blended

QUICK = BlendScenario(agents=12, hours=0.5, inbound_per_hour=90.0, out_talk_mean=90.0)


def test_figures_add_up_and_every_caller_is_accounted_for() -> None:
    r = run_blended(QUICK, "quick", seed=3, mode="progressive")
    assert r.dials > 0 and r.live > 0 and r.inbound_offered > 0
    assert r.live >= r.abandoned + r.connected_out  # the rest were still waiting at the end
    done = r.inbound_answered + r.inbound_abandoned + r.inbound_left
    assert done <= r.inbound_offered <= done + QUICK.agents  # a few still waiting at the end
    assert 0.0 <= r.service_level <= 1.0 and 0.0 < r.occupancy <= 1.0
    assert r.average_wait >= 0.0 and r.p90_wait >= 0.0


def test_same_seed_same_run() -> None:
    a = run_blended(QUICK, "a", seed=5, mode="progressive")
    b = run_blended(QUICK, "b", seed=5, mode="progressive")
    assert (a.dials, a.live, a.inbound_answered, a.average_wait) == (
        b.dials,
        b.live,
        b.inbound_answered,
        b.average_wait,
    )


def test_blending_serves_inbound_better_than_a_small_split_team() -> None:
    busy = BlendScenario(agents=12, hours=0.5, inbound_per_hour=200.0, in_talk_mean=120.0)
    blended = run_blended(busy, "blended", seed=2, mode="progressive")
    split = run_blended(_split(busy, 2), "split", seed=2, mode="progressive")
    assert blended.service_level > split.service_level
    assert blended.inbound_abandoned < split.inbound_abandoned


def test_a_long_inbound_wait_holds_outbound_launches() -> None:
    # only two Hindi speakers, strict skills, many Hindi callers: callers wait, outbound holds
    sc = BlendScenario(
        agents=10,
        hours=0.5,
        inbound_per_hour=240.0,
        hindi_share=1.0,
        hindi_agents_share=0.2,
        skill_relax_seconds=None,
        hold_outbound_after=10.0,
    )
    held = run_blended(sc, "hold", seed=4, mode="progressive")
    free = run_blended(_nohold(sc), "no hold", seed=4, mode="progressive")
    assert held.held_seconds > 0 and free.held_seconds == 0
    assert held.dials < free.dials


def _split(sc: BlendScenario, n: int) -> BlendScenario:
    from dataclasses import replace

    return replace(sc, inbound_agents=n, hold_outbound_after=None)


def _nohold(sc: BlendScenario) -> BlendScenario:
    from dataclasses import replace

    return replace(sc, hold_outbound_after=None)
