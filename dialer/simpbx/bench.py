"""``dialer bench sim``: the simulator under 1,000 concurrent calls at speed 1.

The simulator runs alone in a child process (one event loop, one core) with a lag probe; this
process plays the controller over loopback TCP (AMI client + FastAGI server): it logs the agents
in, keeps ``calls`` customer calls in flight (answer, AMD, FastAGI, EXEC Bridge to an idle agent,
talk, hang-up, wrap-up with a disposition) and counts the AMI events it is served.  Two phases
are measured in the same run: ``idle`` (agents holding, no calls: the baseline) and ``load``.
Bounded in count (``calls``) and time (``duration``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time
from typing import Any

from dialer.protocol.ami import AmiDecoder, Message, encode_action

PROBE_INTERVAL = 0.01  # seconds between lag probes


# --------------------------------------------------------------------------- child (simulator)


class LagProbe:
    """Measures how late the event loop wakes a task that asked to sleep PROBE_INTERVAL.

    Each sample also records the CPU time the loop's thread used meanwhile: lag beyond that
    CPU time was spent waiting for a processor (other processes), not running our callbacks,
    so ``own`` = min(lag, cpu - interval) is the lag the simulator caused itself.
    """

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.own: list[float] = []

    async def run(self) -> None:
        """Probe forever."""
        loop = asyncio.get_running_loop()
        while True:
            start, cpu0 = loop.time(), time.thread_time()
            await asyncio.sleep(PROBE_INTERVAL)
            lag = max(loop.time() - start - PROBE_INTERVAL, 0.0)
            cpu = time.thread_time() - cpu0
            self.samples.append(lag)
            self.own.append(min(lag, max(cpu - PROBE_INTERVAL, 0.0)))

    def take(self) -> tuple[list[float], list[float]]:
        """The samples (lag, own lag) since the last take."""
        out, own = self.samples, self.own
        self.samples, self.own = [], []
        return out, own


def bench_profile(calls: int) -> Any:
    """Every call answered by a person who talks ~20 s; agents log in over 10 s, no breaks."""
    from dialer.simpbx.profile import Dist, load_profile

    base = load_profile()
    called = dataclasses.replace(
        base.called,
        outcome_weights={"human": 1.0},
        ring=Dist(3.0, 0.2, 1.0, 6.0),
        talk=Dist(20.0, 0.3, 8.0, 45.0),
        patience=Dist(600.0),
        party_hangs_up=1.0,
        hangup_during_amd=0.0,
        amd_human={"HUMAN": 1.0},
    )
    agents = dataclasses.replace(
        base.agents,
        login_spread=10.0,
        break_every=0.0,
        wrong_pin_share=0.0,
        absent_share=0.0,
        slow_share=0.0,
        wrapup=Dist(3.0, 0.3, 1.0, 8.0),
    )
    return dataclasses.replace(base, called=called, agents=agents, pins=())


def run_queue_wait() -> float:
    """Seconds this process spent runnable but waiting for a CPU (Linux schedstat), or -1.

    On a shared machine this is the part of the event-loop lag that other processes caused.
    """
    total = 0.0
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/schedstat", encoding="ascii") as fh:
                total += int(fh.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return -1.0
    return total


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def child_main(args: argparse.Namespace) -> None:
    """Run the simulator; report per-phase figures when the parent asks on stdin."""
    from dialer.simpbx.pbx import SimAgentSpec, SimPbx

    niced = False
    if args.nice:
        try:  # on a shared machine: let the simulator's own cost show, not the neighbours'
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
            niced = True
        except OSError:
            niced = False

    agents = [
        SimAgentSpec(str(10000 + i), "2468", f"seat{i:03d}") for i in range(1, args.calls + 1)
    ]
    pbx = SimPbx(
        agi_port=args.agi_port,
        secret=args.secret,
        profile=bench_profile(args.calls),
        speed=args.speed,
        seed=args.seed,
        agents=agents,
    )
    await pbx.start()
    probe = LagProbe()
    probe_task = asyncio.get_running_loop().create_task(probe.run())
    print(json.dumps({"port": pbx.ami_port, "nice": args.nice if niced else 0}), flush=True)
    loop = asyncio.get_running_loop()
    mark_cpu, mark_wall, mark_events = time.process_time(), time.monotonic(), pbx.bus.count
    mark_wait = run_queue_wait()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            cmd = line.strip()
            if not cmd or cmd == "stop":
                break
            if cmd == "login" and args.tune_gc:
                from dialer.simpbx.server import tune_gc

                tune_gc()  # the agents are in: freeze what startup built
            cpu, wall, events = time.process_time(), time.monotonic(), pbx.bus.count
            wait = run_queue_wait()
            lags, own = probe.take()
            report = {
                "phase": cmd,
                "seconds": wall - mark_wall,
                "cpu_seconds": cpu - mark_cpu,
                "cpu_wait_seconds": wait - mark_wait if wait >= 0 else -1.0,
                "loadavg": os.getloadavg()[0],
                "events": events - mark_events,
                "lag_samples": len(lags),
                "lag_p50_ms": _pct(lags, 0.50) * 1000,
                "lag_p99_ms": _pct(lags, 0.99) * 1000,
                "lag_max_ms": max(lags, default=0.0) * 1000,
                "own_lag_p99_ms": _pct(own, 0.99) * 1000,
                "own_lag_max_ms": max(own, default=0.0) * 1000,
                "channels": len(pbx.channels),
                "stats": {k: v for k, v in pbx.stats().items() if isinstance(v, int)},
            }
            print(json.dumps(report), flush=True)
            mark_cpu, mark_wall, mark_events, mark_wait = cpu, wall, events, wait
    finally:
        probe_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe_task
        await pbx.close()


# --------------------------------------------------------------------------- parent (controller)


class Driver:
    """A minimal controller: FastAGI routes plus an AMI client that keeps N calls in flight."""

    def __init__(self, calls: int, secret: str) -> None:
        self.calls = calls
        self.secret = secret
        self.idle: collections.deque[str] = collections.deque()
        self.logged_in = 0
        self.in_flight = 0
        self.launched = 0
        self.completed = 0
        self.bridged = 0
        self.no_agent = 0
        self.events = 0
        self.handoff_ms: list[float] = []
        self.running = False
        self.writer: asyncio.StreamWriter | None = None
        self.n = 0
        self.agents_ready = asyncio.Event()

    # FastAGI -----------------------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One FastAGI session."""
        env: dict[str, str] = {}
        try:
            while True:
                line = await reader.readline()
                if not line or line == b"\n":
                    break
                key, _, value = line.decode().rstrip("\n").partition(": ")
                env[key] = value
            script = env.get("agi_network_script", "")

            async def cmd(text: str) -> str:
                """Send one command; its reply line (the HANGUP notice is skipped)."""
                writer.write(text.encode() + b"\n")
                while True:
                    raw = await reader.readline()
                    if not raw:
                        raise ConnectionError("closed")
                    reply = raw.decode().rstrip("\n")
                    if reply != "HANGUP":
                        return reply

            if script.startswith("agent/login"):
                user = (await cmd("GET DATA agent-user 10000 6")).split("=", 1)[1]
                await cmd("GET DATA agent-pass 10000 6")
                await cmd(f"SET VARIABLE AGENTID {user}")
                await cmd("SET VARIABLE AGENT_STATE READY")
                self.idle.append(env["agi_channel"])
                self.logged_in += 1
                if self.logged_in >= self.calls:
                    self.agents_ready.set()
            elif script.startswith("outbound/answered"):
                t0 = time.monotonic()
                await cmd("GET VARIABLE AMDSTATUS")
                if not self.idle:
                    self.no_agent += 1
                    await cmd("HANGUP")
                    return
                agent = self.idle.popleft()
                self.bridged += 1
                self.handoff_ms.append((time.monotonic() - t0) * 1000)
                await cmd(f"EXEC Bridge {agent},F(dialer-agent-wrapup^s^1)")
                await cmd("GET VARIABLE BRIDGERESULT")
            elif script.startswith("agent/wrapup"):
                code = (await cmd("GET DATA beep 30000 3")).split("=", 1)[1]
                await cmd(f"SET VARIABLE DISPOSITION {code}")
                await cmd("SET VARIABLE AGENT_STATE READY")
                self.idle.append(env["agi_channel"])
        except (ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    # AMI ---------------------------------------------------------------------------------

    async def ami(self, port: int, stop: asyncio.Event) -> None:
        """Log in, read events, replace every finished call while running."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer = writer
        writer.write(encode_action("Login", {"Username": "dialer", "Secret": self.secret}))
        dec = AmiDecoder()
        try:
            while not stop.is_set():
                data = await reader.read(1 << 16)
                if not data:
                    break
                for frame in dec.feed(data):
                    if isinstance(frame, Message) and frame.kind == "event":
                        self.events += 1
                        if frame.name == "Hangup" and (frame.get("Uniqueid") or "").startswith(
                            "bench-"
                        ):
                            self.in_flight -= 1
                            self.completed += 1
                            if self.running:
                                self.originate()
        finally:
            writer.close()

    def originate(self) -> None:
        """Launch one customer call."""
        assert self.writer is not None
        self.n += 1
        self.in_flight += 1
        self.launched += 1
        cid = f"bench-{self.n}"
        self.writer.write(
            encode_action(
                "Originate",
                {
                    "Channel": f"PJSIP/9{self.n:07d}@carrier",
                    "Context": "dialer-out",
                    "Exten": "s",
                    "Priority": "1",
                    "Timeout": "30000",
                    "Async": "true",
                    "ChannelId": cid,
                    "CallerID": '"Bench" <5550000>',
                    "Variable": [f"CALLID={cid}", "DIALER_AMD=1", "ABANDON_PROMPT=tt-allbusy"],
                },
                action_id=cid,
            )
        )


async def run_bench(
    calls: int, duration: float, speed: float, seed: int, nice: int = 0
) -> dict[str, Any]:
    """Run both phases; return the child's phase reports and the driver's counters."""
    import secrets

    secret = secrets.token_urlsafe(16)
    driver = Driver(calls, secret)
    agi = await asyncio.start_server(driver.serve, "127.0.0.1", 0)
    agi_port = agi.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dialer.simpbx.bench",
        "--child",
        "--calls",
        str(calls),
        "--agi-port",
        str(agi_port),
        "--speed",
        str(speed),
        "--seed",
        str(seed),
        "--nice",
        str(nice),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "DIALER_BENCH_SECRET": secret},
    )
    assert proc.stdin is not None and proc.stdout is not None
    stop = asyncio.Event()
    reports: list[dict[str, Any]] = []
    applied_nice = 0
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        applied_nice = first.get("nice", 0)
        ami_task = asyncio.get_running_loop().create_task(driver.ami(first["port"], stop))
        login_budget = 60.0 / speed + 30.0
        await asyncio.wait_for(driver.agents_ready.wait(), login_budget)

        async def mark(name: str) -> dict[str, Any]:
            """Close a measurement phase in the child; its report."""
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{name}\n".encode())
            await proc.stdin.drain()
            report: dict[str, Any] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
            return report

        await mark("login")  # reset the marks: the login burst is not measured
        events0 = driver.events
        await asyncio.sleep(min(5.0, duration / 4))
        idle = await mark("idle")
        idle["ami_events_received"] = driver.events - events0
        reports.append(idle)
        driver.running = True
        events0 = driver.events
        ramp = min(20.0, duration / 3)
        for _ in range(calls):  # an even ramp, as a paced dialer would launch them
            driver.originate()
            await asyncio.sleep(ramp / calls)
        t_end = time.monotonic() + max(duration - ramp, 1.0)
        peak = 0
        while time.monotonic() < t_end:
            await asyncio.sleep(0.5)
            peak = max(peak, driver.in_flight)
        load = await mark("load")
        load["ami_events_received"] = driver.events - events0
        load["peak_in_flight"] = peak
        reports.append(load)
        driver.running = False
        stop.set()
        ami_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await ami_task
    finally:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(b"stop\n")
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        agi.close()
        await agi.wait_closed()
    return {
        "calls": calls,
        "duration": duration,
        "speed": speed,
        "nice": applied_nice,
        "phases": reports,
        "driver": {
            "launched": driver.launched,
            "completed": driver.completed,
            "bridged": driver.bridged,
            "no_agent": driver.no_agent,
            "handoff_ms_median": statistics.median(driver.handoff_ms) if driver.handoff_ms else 0,
        },
    }


def format_report(result: dict[str, Any]) -> list[str]:
    """Human-readable lines: per phase, and load/idle ratios."""
    lines = [
        f"simulator bench: {result['calls']} concurrent calls, speed {result['speed']:g}, "
        f"{result['duration']:g} s of load, simulator alone in a child process"
        + (f" (nice {result['nice']})" if result.get("nice") else "")
    ]
    phases = {p["phase"]: p for p in result["phases"]}
    for p in result["phases"]:
        secs = max(p["seconds"], 1e-9)
        lines.append(
            f"  {p['phase']:<5} {secs:6.1f} s  lag p50 {p['lag_p50_ms']:6.2f} ms  "
            f"p99 {p['lag_p99_ms']:6.2f} ms  max {p['lag_max_ms']:7.2f} ms  "
            f"(own work: p99 {p['own_lag_p99_ms']:5.2f} ms, max {p['own_lag_max_ms']:6.2f} ms)  "
            f"events {p['events'] / secs:8.0f}/s  served {p['ami_events_received'] / secs:8.0f}/s  "
            f"CPU {p['cpu_seconds']:6.2f} s ({100 * p['cpu_seconds'] / secs:5.1f}% of one core), "
            f"waited for a CPU {p['cpu_wait_seconds']:5.2f} s, load avg {p['loadavg']:.1f}  "
            f"channels {p['channels']}"
            + (f"  peak calls {p['peak_in_flight']}" if "peak_in_flight" in p else "")
        )
    if "idle" in phases and "load" in phases:
        i, ld = phases["idle"], phases["load"]
        ratio = ld["lag_p99_ms"] / i["lag_p99_ms"] if i["lag_p99_ms"] > 0 else float("inf")
        cpu_i = i["cpu_seconds"] / max(i["seconds"], 1e-9)
        cpu_l = ld["cpu_seconds"] / max(ld["seconds"], 1e-9)
        lines.append(
            f"  ratio load/idle: lag p99 x{ratio:.1f}, CPU x{cpu_l / max(cpu_i, 1e-9):.1f}; "
            f"target lag p99 < 20 ms: {'met' if ld['lag_p99_ms'] < 20 else 'NOT met'}"
            f" (own work {'met' if ld['own_lag_p99_ms'] < 20 else 'NOT met'})"
        )
    d = result["driver"]
    lines.append(
        f"  calls launched {d['launched']}, completed {d['completed']}, bridged {d['bridged']}, "
        f"no agent {d['no_agent']}, FastAGI answer->bridge median {d['handoff_ms_median']:.1f} ms"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    """Entry point for the child process (``python -m dialer.simpbx.bench --child``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--agi-port", type=int, default=4573)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--default-gc", dest="tune_gc", action="store_false")
    args = parser.parse_args(argv)
    args.secret = os.environ.get("DIALER_BENCH_SECRET", "")
    if not args.child or not args.secret:
        parser.error("internal: run through `dialer bench sim`")
    out = os.environ.get("DIALER_BENCH_CPROFILE")
    if out:  # a developer's switch: profile the simulator process
        import cProfile

        cProfile.runctx("asyncio.run(child_main(args))", globals(), {"args": args}, out)
        return
    asyncio.run(child_main(args))


if __name__ == "__main__":
    main()
