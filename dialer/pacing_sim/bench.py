"""The pacing benchmark: run policies over scenarios, summarise, tabulate and chart."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from dialer.pacing import (
    CallAnswered,
    CallConnected,
    CallLaunched,
    CallUnanswered,
    LedgerBucket,
    PacingSnapshot,
    TalkEnded,
    WrapEnded,
    make_pacer,
)
from dialer.pacing_sim.engine import DayResult, draw_lead, simulate_day
from dialer.pacing_sim.policies import POLICIES, make_policy
from dialer.pacing_sim.scenarios import CORE, Scenario, grid_scenarios, stress_scenarios

CAP = 0.03
DAY_GAP = 86_400.0  # days sit on one clock, a calendar day apart, so the ledger rolls over


@dataclass(frozen=True, slots=True)
class Summary:
    """One policy on one scenario, over all its days."""

    scenario: str
    policy: str
    agents: int
    days: int
    occupancy: float
    talk_minutes_per_agent_hour: float
    abandon_rate: float
    worst_day: float
    days_over_cap: int
    uk_rate: float  # (abandoned + AMD false positives) / (live answers + AMD false positives)
    dials_per_agent_hour: float
    decide_p50_us: float
    decide_p99_us: float
    day_occupancy: tuple[float, ...]
    day_abandon: tuple[float, ...]


def simulate_days(
    scenario: Scenario, policy: str, days: range, *, seed: int = 1, tick: float = 1.0
) -> list[DayResult]:
    """Consecutive days under ``policy``: a fresh pacer each day, the ledger carried over."""
    history: tuple[LedgerBucket, ...] = ()
    results: list[DayResult] = []
    for day in days:
        pacer = make_policy(policy, history)
        origin = 10_000.0 + day * DAY_GAP
        results.append(simulate_day(scenario, pacer, day=day, seed=seed, origin=origin, tick=tick))
        history = pacer.ledger.buckets()
    return results


def run_days(scenario: Scenario, policy: str, *, seed: int = 1, tick: float = 1.0) -> Summary:
    """Every day of ``scenario`` under ``policy``, in one sequence."""
    days = simulate_days(scenario, policy, range(scenario.days), seed=seed, tick=tick)
    return summarize(scenario, policy, days)


def summarize(scenario: Scenario, policy: str, results: Sequence[DayResult]) -> Summary:
    """Pool the days: rates are ratios of totals; the worst day is the highest daily rate."""
    logged = sum(r.logged_seconds for r in results)
    busy = sum(r.talk_seconds + r.wrap_seconds for r in results)
    talk = sum(r.talk_seconds for r in results)
    live = sum(r.live for r in results)
    abandoned = sum(r.abandoned for r in results)
    fp = sum(r.amd_false_positives for r in results)
    hours = logged / 3600.0
    return Summary(
        scenario=scenario.name,
        policy=policy,
        agents=scenario.agents,
        days=len(results),
        occupancy=busy / logged,
        talk_minutes_per_agent_hour=talk / 60.0 / hours,
        abandon_rate=abandoned / live if live else 0.0,
        worst_day=max(r.abandon_rate for r in results),
        days_over_cap=sum(1 for r in results if r.abandon_rate > CAP + 1e-12),
        uk_rate=(abandoned + fp) / (live + fp) if live + fp else 0.0,
        dials_per_agent_hour=sum(r.dials for r in results) / hours,
        decide_p50_us=statistics.median(r.decide_p50_us for r in results),
        decide_p99_us=max(r.decide_p99_us for r in results),
        day_occupancy=tuple(r.occupancy for r in results),
        day_abandon=tuple(r.abandon_rate for r in results),
    )


Job = tuple[Scenario, str, range, int, float]


def _job(job: Job) -> list[DayResult]:
    scenario, policy, days, seed, tick = job
    return simulate_days(scenario, policy, days, seed=seed, tick=tick)


def _cost(job: Job) -> float:
    """A rough relative cost, to start the longest jobs first."""
    sc, policy, days, _, _ = job
    dials = sc.agents / sc.handle_mean / max(0.01, sc.answer_rate * sc.live_share)
    hours = sc.day_seconds / 3600.0
    return len(days) * hours * (dials * 4.0 + (3.0 if policy == "predictive" else 0.3))


def run_matrix(
    scenarios: Iterable[Scenario],
    policies: Sequence[str] = POLICIES,
    *,
    seed: int = 1,
    tick: float = 1.0,
    workers: int | None = None,
    chunk_days: int = 5,
    progress: Callable[[Summary], None] | None = None,
) -> list[Summary]:
    """Every policy on every scenario, in parallel processes; results in input order.

    A scenario's days run in chunks of ``chunk_days`` consecutive days (the ledger carried over
    within a chunk, each chunk starting afresh), so long scenarios use every worker.  The
    rolling windows cannot bind while every day stays under the cap, so chunking changes
    nothing then; where a day broke the cap, the next day of its chunk sees it.
    """
    pairs = [(sc, policy) for sc in scenarios for policy in policies]
    jobs: list[tuple[int, Job]] = []
    for index, (sc, policy) in enumerate(pairs):
        for first in range(0, sc.days, chunk_days):
            days = range(first, min(sc.days, first + chunk_days))
            jobs.append((index, (sc, policy, days, seed, tick)))
    jobs.sort(key=lambda j: -_cost(j[1]))
    days_of: dict[int, list[DayResult]] = {i: [] for i in range(len(pairs))}
    waiting = {i: len([j for j in jobs if j[0] == i]) for i in range(len(pairs))}
    summaries: dict[int, Summary] = {}

    def collect(index: int, results: list[DayResult]) -> None:
        days_of[index].extend(results)
        waiting[index] -= 1
        if waiting[index] == 0:
            sc, policy = pairs[index]
            ordered = sorted(days_of[index], key=lambda r: r.day)
            summaries[index] = summarize(sc, policy, ordered)
            if progress:
                progress(summaries[index])

    workers = workers or os.cpu_count() or 1
    if workers == 1:
        for index, job in jobs:
            collect(index, _job(job))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(index, pool.submit(_job, job)) for index, job in jobs]
            for index, future in futures:
                collect(index, future.result())
    return [summaries[i] for i in range(len(pairs))]


def select_scenarios(
    names: Sequence[str],
    *,
    core_days: int,
    stress_days: int,
    grid_days: int,
    grid_hours: float = 2.0,
) -> list[Scenario]:
    """Scenarios by group name (core, stress, grid) or by scenario name."""
    everything = [replace(CORE, days=core_days), *stress_scenarios(stress_days)]
    grid = grid_scenarios(grid_days, grid_hours)
    chosen: list[Scenario] = []
    for name in names:
        if name == "core":
            chosen.append(everything[0])
        elif name == "stress":
            chosen.extend(everything[1:])
        elif name == "grid":
            chosen.extend(grid)
        else:
            match = [sc for sc in everything + grid if sc.name == name]
            if not match:
                raise ValueError(f"unknown scenario {name!r}")
            chosen.extend(match)
    return chosen


# --------------------------------------------------------------------------- decide latency


def warmed_predictive(calls: int = 3000, seed: int = 1) -> object:
    """A predictive pacer fed ``calls`` calls of the core population, past its cold start."""
    pacer = make_pacer("predictive")
    rng = random.Random(seed)
    at = 0.0
    for _ in range(calls):
        lead = draw_lead(rng, CORE, CORE.answer_rate)
        at += 0.5
        pacer.observe(CallLaunched(at=at))
        if not lead.answered:
            pacer.observe(CallUnanswered(at=at, ring_seconds=lead.ring, reason=lead.reason))  # type: ignore[arg-type]
            continue
        pacer.observe(CallAnswered(at=at, ring_seconds=lead.ring, live=lead.live))
        if lead.live:
            pacer.observe(CallConnected(at=at, wait_seconds=0.0))
            pacer.observe(TalkEnded(at=at, talk_seconds=lead.talk))
            pacer.observe(WrapEnded(at=at, wrap_seconds=lead.wrap))
    return pacer


@dataclass(frozen=True, slots=True)
class Latency:
    """decide() latency on one snapshot size."""

    policy: str
    agents: int
    ringing: int
    samples: int
    p50_us: float  # wall clock: includes any time the process was not scheduled
    p99_us: float
    cpu_p50_us: float  # CPU time of the deciding thread: the code's own cost
    cpu_p99_us: float


def decide_latency(
    policy: str,
    *,
    talking: int = 600,
    wrapping: int = 300,
    ready: int = 100,
    ringing: int = 3000,
    samples: int = 2000,
    seed: int = 1,
) -> Latency:
    """Time decide() on ``samples`` random snapshots of the given size."""
    pacer = warmed_predictive(seed=seed) if policy == "predictive" else make_policy(policy)
    rng = random.Random(seed)
    snaps = [
        PacingSnapshot(
            now=10_000.0 + i,
            ready_agents=ready,
            talking=tuple(rng.expovariate(1 / 150.0) for _ in range(talking)),
            wrapping=tuple(rng.uniform(0.0, 60.0) for _ in range(wrapping)),
            ringing=tuple(rng.uniform(0.0, 20.0) for _ in range(ringing)),
            waiting=(),
        )
        for i in range(samples)
    ]
    wall, cpu = [], []
    for snap in snaps:
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        pacer.decide(snap)  # type: ignore[attr-defined]
        cpu.append(time.thread_time_ns() - started_cpu)
        wall.append(time.perf_counter_ns() - started)
    wall.sort()
    cpu.sort()
    return Latency(
        policy=policy,
        agents=talking + wrapping + ready,
        ringing=ringing,
        samples=samples,
        p50_us=wall[len(wall) // 2] / 1000.0,
        p99_us=wall[(len(wall) * 99) // 100] / 1000.0,
        cpu_p50_us=cpu[len(cpu) // 2] / 1000.0,
        cpu_p99_us=cpu[(len(cpu) * 99) // 100] / 1000.0,
    )


# --------------------------------------------------------------------------- output


def table(summaries: Sequence[Summary], markdown: bool = False) -> str:
    """The results as a fixed-width (or Markdown) table."""
    head = (
        "scenario",
        "policy",
        "agents",
        "days",
        "occupancy",
        "talk min/agent-h",
        "abandon",
        "worst day",
        "days >3%",
        "UK rate",
        "dials/agent-h",
        "decide p50 us",
        "decide p99 us",
    )
    rows = [
        (
            s.scenario,
            s.policy,
            str(s.agents),
            str(s.days),
            f"{s.occupancy:.2%}",
            f"{s.talk_minutes_per_agent_hour:.1f}",
            f"{s.abandon_rate:.2%}",
            f"{s.worst_day:.2%}",
            str(s.days_over_cap),
            f"{s.uk_rate:.2%}",
            f"{s.dials_per_agent_hour:.0f}",
            f"{s.decide_p50_us:.0f}",
            f"{s.decide_p99_us:.0f}",
        )
        for s in summaries
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [head, *rows])


def vs_baseline(summaries: Sequence[Summary], baseline: str = "progressive") -> str:
    """Occupancy of each policy as a ratio of the baseline's, per scenario."""
    base = {s.scenario: s.occupancy for s in summaries if s.policy == baseline}
    lines = []
    for s in summaries:
        if s.policy != baseline and s.scenario in base:
            ratio = s.occupancy / base[s.scenario]
            lines.append(f"{s.scenario:<24} {s.policy:<12} occupancy x{ratio:.3f} vs {baseline}")
    return "\n".join(lines)


def chart(summaries: Sequence[Summary], path: Path) -> Path:
    """Occupancy against abandonment per policy: each core day, and each scenario overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"predictive": "C0", "progressive": "C2", "ratio2": "C1", "vicidial": "C3"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for s in summaries:
        if s.scenario != "core":
            continue
        left.scatter(
            [100 * a for a in s.day_abandon],
            [100 * o for o in s.day_occupancy],
            s=14,
            alpha=0.7,
            color=colours.get(s.policy, "k"),
            label=s.policy,
        )
    left.set_title("core scenario: one dot per simulated day")
    for s in summaries:
        right.scatter(
            100 * s.worst_day,
            100 * s.occupancy,
            s=18,
            alpha=0.6,
            color=colours.get(s.policy, "k"),
            label=s.policy,
        )
    right.set_title("every scenario: overall occupancy vs worst day")
    for ax in (left, right):
        ax.axvline(100 * CAP, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("abandonment, % of live answers (worst day on the right)")
        ax.set_ylabel("occupancy, % (talk + wrap-up over logged-in time)")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=False))
        ax.legend(unique.values(), unique.keys(), loc="center")
        ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_benchmark(
    scenarios: Sequence[Scenario],
    policies: Sequence[str],
    *,
    seed: int,
    tick: float,
    workers: int | None,
    latency: bool,
    chart_path: Path | None,
    markdown_path: Path | None,
    echo: Callable[[str], None],
) -> list[Summary]:
    """Run everything asked for, print the tables and figures, write the chart and Markdown."""
    started = time.perf_counter()
    echo(
        f"pacing benchmark: {len(scenarios)} scenario(s) x {len(policies)} policies, "
        f"seed {seed}, decide every {tick:g} s and whenever an agent turns ready, "
        f"{workers or os.cpu_count()} worker(s)"
    )

    def progress(s: Summary) -> None:
        echo(
            f"  done {s.scenario:<22} {s.policy:<12} occupancy {s.occupancy:6.2%}  "
            f"abandon {s.abandon_rate:6.2%}  worst day {s.worst_day:6.2%}"
        )

    summaries = run_matrix(
        scenarios, policies, seed=seed, tick=tick, workers=workers, progress=progress
    )
    echo("")
    echo(table(summaries))
    echo("")
    echo(vs_baseline(summaries))
    lat: list[Latency] = []
    if latency:
        echo("")
        echo("decide() latency, 1000 agents (600 talking, 300 wrapping, 100 ready), 3000 ringing:")
        for policy in policies:
            result = decide_latency(policy, seed=seed)
            lat.append(result)
            echo(
                f"  {policy:<12} wall p50 {result.p50_us:8.1f} us  p99 {result.p99_us:8.1f} us"
                f"   cpu p50 {result.cpu_p50_us:8.1f} us  p99 {result.cpu_p99_us:8.1f} us"
            )
        base = next((x for x in lat if x.policy == "progressive"), None)
        if base is not None:
            for x in lat:
                if x is not base:
                    echo(f"  {x.policy:<12} p99 x{x.p99_us / base.p99_us:.1f} of progressive")
    if chart_path is not None:
        echo(f"\nchart: {chart(summaries, chart_path)}")
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        text = table(summaries, markdown=True)
        if lat:
            text += "\n\n| decide() at 1000 agents / 3000 ringing | wall p50 us | wall p99 us"
            text += " | CPU p50 us | CPU p99 us |\n|---|---|---|---|---|\n"
            text += "\n".join(
                f"| {x.policy} | {x.p50_us:.1f} | {x.p99_us:.1f} | {x.cpu_p50_us:.1f}"
                f" | {x.cpu_p99_us:.1f} |"
                for x in lat
            )
        markdown_path.write_text(text + "\n", encoding="utf-8")
        raw = {
            "summaries": [dataclasses.asdict(x) for x in summaries],
            "latency": [dataclasses.asdict(x) for x in lat],
        }
        markdown_path.with_suffix(".json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
        echo(f"markdown: {markdown_path}")
    echo(f"\nwall time {time.perf_counter() - started:.0f} s")
    return summaries
