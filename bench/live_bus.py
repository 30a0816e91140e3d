"""Supervisor command bus round trip: RedisBus and LocalBus against a Redis PING baseline.

Run: ``.venv/bin/python bench/live_bus.py [--redis redis://127.0.0.1:6379/0] [--count 500]``.
Prints p50/p95 latency of one command and its reply (the engine answers at once), and the ratio
to a bare PING on the same Redis in the same run.  Loopback only; bounded by --count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from dialer.engine.commands import Command, Reply, ok
from dialer.live.bus import LocalBus, RedisBus, serve


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[int(q * (len(ordered) - 1))] * 1000


async def _time(count: int, op: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        await op()
        out.append(time.perf_counter() - start)
    return out


async def main(url: str, count: int) -> None:
    """Measure and print."""
    if not url.startswith("redis://127.") and not url.startswith("redis://localhost"):
        raise SystemExit("loopback Redis only")
    prefix = f"bench-{secrets.token_hex(3)}:"
    ctl = aioredis.from_url(url, decode_responses=True)
    cli = aioredis.from_url(url, decode_responses=True)

    async def submit(cmd: Command) -> Reply:
        return ok("done")

    bus = RedisBus(ctl, prefix)
    local = LocalBus(actor="bench")
    tasks = [asyncio.create_task(serve(bus, submit)), asyncio.create_task(serve(local, submit))]
    await bus.ready.wait()
    await local.ready.wait()
    client = RedisBus(cli, prefix)
    try:
        ping = await _time(count, cli.ping)
        remote = await _time(count, lambda: client.request("status"))
        inproc = await _time(count, lambda: local.request("status"))
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        keys = [k async for k in ctl.scan_iter(match=prefix + "*")]
        if keys:
            await ctl.delete(*keys)
        await ctl.aclose()
        await cli.aclose()
    base = _ms(ping, 0.5)
    print(f"{count} round trips each")
    print(f"redis PING          p50 {base:7.3f} ms  p95 {_ms(ping, 0.95):7.3f} ms  (baseline)")
    for name, samples in (("RedisBus command", remote), ("LocalBus command", inproc)):
        p50 = _ms(samples, 0.5)
        print(
            f"{name:<19} p50 {p50:7.3f} ms  p95 {_ms(samples, 0.95):7.3f} ms"
            f"  ({p50 / base:5.1f}x PING)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--count", type=int, default=500)
    ns = parser.parse_args()
    asyncio.run(main(ns.redis, max(1, min(ns.count, 100_000))))
