"""``dialer bench handoff``: hand-off latency and controller CPU, on the simulator, in figures.

For each floor size (default 35 and 500 agents) the benchmark seeds a fresh SQLite database,
starts the PBX simulator in a *separate process* (``dialer sim-pbx``) so the CPU counted is the
controller's alone, runs the real controller in this process against it over loopback TCP, and
measures, once every agent has logged in:

* hand-off latency per connected call, real milliseconds from the moment there is both a live
  person (the AMD verdict reached the controller) and a free agent to both channels in the
  bridge (target p99 < 50 ms); a person who had to wait for an agent to free up is counted
  apart (that wait is the pacer's doing, not the hand-off's);
* controller CPU seconds (user + system of this process) per 1,000 calls ended.

Called parties and agents follow the simulator's default (realistic) profile: 45 s median
conversations, 8 s wrap-up; only breaks and wrong PINs are switched off.

Baselines in the same run: a bare loopback TCP connect + one line each way (the floor under
any FastAGI hand-off), and the first floor size for the later ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dialer.demo import RigSpec, agent_numbers, agent_pin, free_port, seed_database

SHARED_PIN = "2468"
PROFILE = """
[agents]
login_spread = {spread}
break_every = 0.0
wrong_pin_share = 0.0

[called]

[asterisk]
seat_count = {seats}
"""


@dataclass(frozen=True, slots=True)
class FloorResult:
    """Figures for one floor size."""

    agents: int
    speed: float
    connects: int
    ended: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float
    wall_seconds: float
    # p50 / p99 ms of the three parts: PBX -> FastAGI request, engine, bridge -> AMI events
    parts_p50: tuple[float, float, float] = (0.0, 0.0, 0.0)
    parts_p99: tuple[float, float, float] = (0.0, 0.0, 0.0)
    waited: int = 0  # hand-offs where the person had to wait for an agent to free up
    listings: int = 0  # channel listings (reconciliations) the engine asked for meanwhile
    wait_p99_ms: float = 0.0

    @property
    def cpu_per_1000_calls(self) -> float:
        """Controller CPU seconds per 1,000 calls ended."""
        return self.cpu_seconds * 1000.0 / self.ended if self.ended else float("nan")


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def loopback_baseline(rounds: int = 200) -> float:
    """Median ms of a loopback TCP connect + one line to a server + its one-line answer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(line)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    times = []
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"agi_network: yes\n")
            await writer.drain()
            await reader.readline()
            times.append((time.perf_counter() - t0) * 1000.0)
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return _quantile(times, 0.5)


async def run_floor(
    agents: int,
    *,
    speed: float,
    connects: int,
    limit: float,
    say: Callable[[str], None],
    warmup: float = 0.0,
) -> FloorResult:
    """One floor: seed, simulator process, controller; measure after every agent is in."""
    from dialer.app import Controller
    from dialer.config import (
        AgiSettings,
        AmiSettings,
        AsteriskSettings,
        DatabaseSettings,
        Settings,
        SiteSettings,
        TrunkSettings,
    )
    from dialer.db.database import Database
    from dialer.engine.ports import ScaledClock
    from dialer.live.state import MemoryLive

    work = Path(tempfile.mkdtemp(prefix="dialer-bench-handoff-"))
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    site = SiteSettings(calling_floor_start="00:00", calling_floor_end="23:59")
    # Enough leads that the floor never runs dry while every agent logs in and is measured.
    leads = max(1000, agents * 12 + connects * 3)
    spec = RigSpec(agents=agents, leads=leads, speed=speed, seed=3, shared_pin=SHARED_PIN)
    db = Database(url, site=site)
    await db.upgrade()
    await seed_database(db, spec)
    await db.close()
    (work / "agents.csv").write_text(_agents_csv(agents))
    spread = max(5.0, agents / 20.0)
    (work / "profile.toml").write_text(PROFILE.format(spread=spread, seats=max(agents, 35)))
    ami_port, agi_port = free_port(), free_port()
    secret = os.urandom(12).hex()
    sim = await _start_sim(work, ami_port, agi_port, speed, secret)
    settings = Settings(
        ami=AmiSettings(port=ami_port, secret=secret, backoff_initial=0.05, backoff_max=0.5),
        agi=AgiSettings(port=agi_port),
        database=DatabaseSettings(url=url, spool_path=str(work / "spool")),
        site=site,
        asterisk=AsteriskSettings(
            trunks=(TrunkSettings(max_channels=agents * 4 + 50, max_cps=max(50.0, agents)),)
        ),
    )
    ctl = Controller(settings, clock=ScaledClock(speed), live=MemoryLive(), owner="bench")
    task = asyncio.create_task(ctl.run())
    try:
        await asyncio.wait_for(ctl.ready.wait(), 30)
        assert ctl.parts is not None
        engine = ctl.parts.engine
        say(f"  {agents} agents: waiting for every agent to log in ...")
        await engine.wait_for(
            lambda: sum(a.logged_in for a in engine.agents.values()) >= agents, limit
        )
        if warmup > 0:
            # Everyone just logged in: the first launches all answer at once (a cold-start
            # storm); measure the floor once it runs in its steady state.
            say(f"  {agents} agents: all in; {warmup:g} s warm-up ...")
            await asyncio.sleep(warmup)
        first = len(engine.stats.handoff_ms)
        first_parts = len(engine.stats.handoff_parts)
        first_wait = len(engine.stats.agent_wait_ms)
        ended0, cpu0, wall0 = engine.stats.ended, _cpu(), time.perf_counter()
        listings0 = engine.stats.reconciled
        with contextlib.suppress(TimeoutError):
            await engine.wait_for(lambda: len(engine.stats.handoff_ms) - first >= connects, limit)
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
        samples = engine.stats.handoff_ms[first:]
        parts = engine.stats.handoff_parts[first_parts:]
        # Reserved in the same engine step as the verdict (microseconds later) is no wait.
        waits = [w for w in engine.stats.agent_wait_ms[first_wait:] if w > 1.0]
        ended = engine.stats.ended - ended0
        listings = engine.stats.reconciled - listings0
    finally:
        ctl.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        sim.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sim.wait(), 10)
    return FloorResult(
        agents=agents,
        speed=speed,
        connects=len(samples),
        ended=ended,
        p50_ms=_quantile(samples, 0.5),
        p90_ms=_quantile(samples, 0.9),
        p99_ms=_quantile(samples, 0.99),
        max_ms=max(samples) if samples else float("nan"),
        cpu_seconds=cpu,
        wall_seconds=wall,
        parts_p50=_part_quantiles(parts, 0.5),
        parts_p99=_part_quantiles(parts, 0.99),
        waited=len(waits),
        wait_p99_ms=_quantile(waits, 0.99) if waits else 0.0,
        listings=listings,
    )


def _part_quantiles(
    parts: Sequence[tuple[float, float, float]], q: float
) -> tuple[float, float, float]:
    return (
        _quantile([p[0] for p in parts], q),
        _quantile([p[1] for p in parts], q),
        _quantile([p[2] for p in parts], q),
    )


def _agents_csv(agents: int) -> str:
    lines = ["agent_number,pin,seat"]
    for i, number in enumerate(agent_numbers(agents)):
        lines.append(f"{number},{agent_pin(number, SHARED_PIN)},seat{i + 1:03d}")
    return "\n".join(lines) + "\n"


async def _start_sim(
    work: Path, ami_port: int, agi_port: int, speed: float, secret: str
) -> asyncio.subprocess.Process:
    env = dict(os.environ, DIALER_AMI_SECRET=secret)
    log = await asyncio.to_thread((work / "sim.log").open, "wb")
    env.pop("DIALER_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from dialer.cli import main; main()",
        "sim-pbx",
        "--listen",
        f"127.0.0.1:{ami_port}",
        "--agi",
        f"127.0.0.1:{agi_port}",
        "--speed",
        str(speed),
        "--profile",
        str(work / "profile.toml"),
        "--agents-file",
        str(work / "agents.csv"),
        cwd=str(work),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", ami_port), 0.2):
            return proc
        if proc.returncode is not None:
            raise RuntimeError(f"simulator exited: see {work / 'sim.log'}")
        await asyncio.sleep(0.1)
    proc.terminate()
    raise RuntimeError("simulator did not listen within 20 s")


async def run_bench(
    floors: Sequence[int],
    speeds: Sequence[float],
    connects: int,
    limit: float,
    say: Callable[[str], None],
    warmup: float = 20.0,
) -> list[FloorResult]:
    """Every floor, one after the other; prints as it goes."""
    base = await loopback_baseline()
    say(f"baseline: loopback TCP connect + one line each way, median {base:.3f} ms")
    results = []
    for agents, speed in zip(floors, speeds, strict=True):
        r = await run_floor(
            agents, speed=speed, connects=connects, limit=limit, say=say, warmup=warmup
        )
        results.append(r)
        say(format_floor(r, base, results[0]))
    return results


def format_floor(r: FloorResult, loopback_ms: float, first: FloorResult) -> str:
    """One floor's figures, with ratios to the baselines."""
    ratio = r.p99_ms / first.p99_ms if first.p99_ms else float("nan")
    verdict = "meets" if r.p99_ms < 50.0 else "MISSES"
    return (
        f"{r.agents:4d} agents, x{r.speed:g}: {r.connects} hand-offs in {r.wall_seconds:.1f} s; "
        f"p50 {r.p50_ms:.2f} ms, p90 {r.p90_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
        f"max {r.max_ms:.1f} ms ({verdict} p99 < 50 ms; p50 = {r.p50_ms / loopback_ms:.1f}x "
        f"loopback; p99 = {ratio:.2f}x the {first.agents}-agent floor); controller CPU "
        f"{r.cpu_per_1000_calls:.1f} s per 1,000 calls ({r.ended} calls ended, "
        f"{r.cpu_seconds / r.wall_seconds:.0%} of one core)\n"
        f"      parts p50/p99 ms: PBX->FastAGI request {r.parts_p50[0]:.2f}/{r.parts_p99[0]:.2f}, "
        f"engine {r.parts_p50[1]:.3f}/{r.parts_p99[1]:.3f}, "
        f"bridge->AMI events {r.parts_p50[2]:.2f}/{r.parts_p99[2]:.2f}; "
        f"{r.waited} of {r.connects} waited for an agent to free up (p99 wait "
        f"{r.wait_p99_ms:.0f} ms, not counted above); {r.listings} channel listings "
        f"(reconciliations) meanwhile"
    )


def write_csv(results: Sequence[FloorResult], path: Path) -> None:
    """The figures as CSV (one row per floor)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["agents", "speed", "connects", "p50_ms", "p99_ms", "cpu_s_per_1000_calls"])
        for r in results:
            w.writerow(
                [
                    r.agents,
                    r.speed,
                    r.connects,
                    f"{r.p50_ms:.3f}",
                    f"{r.p99_ms:.3f}",
                    f"{r.cpu_per_1000_calls:.2f}",
                ]
            )
