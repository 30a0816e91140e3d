"""Running the simulator as a server (``dialer sim-pbx``): option parsing helpers and the loop."""

from __future__ import annotations

import asyncio
import csv
import ipaddress
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dialer.simpbx.pbx import SimAgentSpec, SimPbx
from dialer.simpbx.profile import Profile


class ServerOptionError(ValueError):
    """A command-line value the simulator cannot use."""


def parse_hostport(text: str, *, loopback_only: bool = True) -> tuple[str, int]:
    """``host:port`` -> (host, port); the simulator only talks over 127.0.0.0/8."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ServerOptionError(f"{text!r}: expected HOST:PORT")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ServerOptionError(f"{text!r}: port out of range")
    host = host.strip("[]") or "127.0.0.1"
    if loopback_only:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise ServerOptionError(f"{text!r}: the simulator only binds/connects to loopback")
    return host, port


def parse_agent(text: str) -> SimAgentSpec:
    """``NUMBER:PIN:SEAT`` -> SimAgentSpec."""
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise ServerOptionError(
            f"{text!r}: expected AGENT_NUMBER:PIN:SEAT (e.g. 1001:4321:seat001)"
        )
    return SimAgentSpec(parts[0], parts[1], parts[2])


def read_agents(path: Path) -> list[SimAgentSpec]:
    """A CSV file with columns agent_number, pin, seat (header row required)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for i, row in enumerate(rows, 2):
        try:
            out.append(
                SimAgentSpec(row["agent_number"].strip(), row["pin"].strip(), row["seat"].strip())
            )
        except (KeyError, AttributeError):
            raise ServerOptionError(f"{path}:{i}: need columns agent_number, pin, seat") from None
    return out


def tune_gc(*, freeze: bool = True) -> None:
    """Garbage-collector settings for a process that is the simulator (server, benchmark).

    A simulator with thousands of live channels holds ~100k tracked objects; Python's default
    thresholds then run full collections that stall the event loop for 100-400 ms.  Moving the
    startup objects out of the collector's sight (``gc.freeze``) and collecting the young
    generation less often removes those stalls.  Process-wide: not done by :class:`SimPbx`.
    """
    import gc

    gc.set_threshold(10_000, 20, 100)
    if freeze:
        gc.freeze()


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Everything ``dialer sim-pbx`` needs."""

    listen: tuple[str, int]
    agi: tuple[str, int]
    username: str
    secret: str
    profile: Profile
    speed: float
    seed: int
    agents: Sequence[SimAgentSpec]
    duration: float  # real seconds; 0 = until interrupted


async def run_server(opts: ServerOptions, echo: Callable[[str], None]) -> dict[str, object]:
    """Run until SIGINT/SIGTERM (or ``duration``); return the final stats."""
    pbx = SimPbx(
        ami_host=opts.listen[0],
        ami_port=opts.listen[1],
        agi_host=opts.agi[0],
        agi_port=opts.agi[1],
        username=opts.username,
        secret=opts.secret,
        profile=opts.profile,
        speed=opts.speed,
        seed=opts.seed,
        agents=opts.agents,
    )
    await pbx.start()
    tune_gc()
    echo(
        f"sim-pbx: AMI on {opts.listen[0]}:{pbx.ami_port} (user {opts.username}), "
        f"FastAGI to {opts.agi[0]}:{opts.agi[1]}, speed {opts.speed:g}, seed {opts.seed}, "
        f"{len(opts.agents)} agents"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        if opts.duration > 0:
            try:
                await asyncio.wait_for(stop.wait(), opts.duration)
            except TimeoutError:
                pass
        else:
            await stop.wait()
    finally:
        stats = pbx.stats()
        await pbx.close()
    return stats
