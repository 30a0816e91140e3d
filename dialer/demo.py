"""The embedded world: seed a database, start the simulator, run the real controller against it.

``Rig`` is what ``dialer demo``, the end-to-end tests and ``dialer bench handoff`` share: a
fresh database with one campaign, its agents and leads over a district hierarchy, the PBX
simulator on a loopback port, and the real :class:`dialer.app.Controller` talking to it over
TCP (AMI and FastAGI), all on one scaled clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialer.app import Controller
from dialer.config import (
    AgiSettings,
    AmiSettings,
    AsteriskSettings,
    DatabaseSettings,
    EngineSettings,
    Settings,
    SiteSettings,
    TrunkSettings,
)
from dialer.engine.ports import ScaledClock

log = logging.getLogger("dialer.demo")

DISTRICT = ("D01", "Varanasi")
MANDALS = ("Kashi", "Sarnath", "Ramnagar", "Shivpur", "Lohta", "Chiraigaon")
HINDI_NAMES = ("Asha", "Ravi", "Sunita", "Vikram", "Meena", "Arjun", "Pooja", "Suresh", "Kavita")
SURNAMES = ("Sharma", "Verma", "Yadav", "Patel", "Singh", "Gupta", "Mishra", "Tiwari")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    Taken below Linux's ephemeral range (32768-60999): a client that connects to a port in
    that range before its server listens can connect to itself (TCP simultaneous open) and
    then hold the very port the server wants.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free TCP port on 127.0.0.1 in 20000-32000")


@dataclass
class RigSpec:
    """What to build: sizes, speed, outcome mix and campaign settings."""

    agents: int = 35
    leads: int = 3000
    speed: float = 20.0
    seed: int = 1
    db_url: str = ""
    dial_mode: str = "predictive"
    phones: Sequence[str] = ()  # explicit numbers (pinned outcomes); else random mobiles
    lead_zones: Sequence[str] = ("Asia/Kolkata",)
    window: tuple[str, str] = ("00:00", "23:59")
    dnc: Sequence[str] = ()
    wrapup_seconds: float = 30.0
    abandon_after: float = 2.0
    pacing_target: float = 3.0
    profile: Any = None
    trunk_channels: int = 200
    trunk_cps: float = 50.0
    owner: str = "rig-ctl"
    stop_grace: float = 0.0  # real seconds calls in flight get to end at a clean stop
    shared_pin: str = ""  # one PIN for every agent (large benchmark floors: one scrypt hash)
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    called_overrides: dict[str, Any] = field(default_factory=dict)


def agent_numbers(n: int) -> list[str]:
    """Agent numbers 1001, 1002, ..."""
    return [str(1001 + i) for i in range(n)]


def agent_pin(number: str, shared: str = "") -> str:
    """The demo's PIN for an agent (the demo is a toy: PINs are derived, not secret)."""
    return shared or str(int(number) * 7 % 9000 + 1000)


async def seed_database(db: Any, spec: RigSpec) -> dict[str, Any]:
    """Create the campaign, agents (hashed PINs) and leads over the district's hierarchy."""
    from dialer.db.agents import hash_pin
    from dialer.db.campaigns import create_campaign
    from dialer.db.models import Agent as AgentRow
    from dialer.db.models import AgentCampaign, Dnc, Lead

    rng = random.Random(spec.seed)
    name = "district-outreach"
    async with db.transaction() as s:
        campaign = await create_campaign(
            s,
            name,
            status="running",
            dial_mode=spec.dial_mode,
            pacing_target=spec.pacing_target,
            calling_start=spec.window[0],
            calling_end=spec.window[1],
            calling_days="all",
            timezone="Asia/Kolkata",
            wrapup_seconds=spec.wrapup_seconds,
            caller_id='"District Office" <5551000>',
            max_attempts=3,
        )
        cid = campaign.id
    numbers = agent_numbers(spec.agents)
    pins = sorted({agent_pin(n, spec.shared_pin) for n in numbers})
    # scrypt is slow on purpose (~0.15 s): hash each distinct PIN once, in threads.
    hashed = await asyncio.gather(*(asyncio.to_thread(hash_pin, p) for p in pins))
    hashes = dict(zip(pins, hashed, strict=True))
    async with db.transaction() as s:
        for number in numbers:
            agent = AgentRow(
                number=number,
                name=f"{rng.choice(HINDI_NAMES)} {rng.choice(SURNAMES)}",
                pin_hash=hashes[agent_pin(number, spec.shared_pin)],
                disabled=False,
                failed_pins=0,
                languages=["hi", "en"],
                skills=[],
            )
            s.add(agent)
            await s.flush()
            s.add(AgentCampaign(agent_id=agent.id, campaign_id=cid))
    phones = list(spec.phones) or _mobiles(rng, spec.leads)
    rows = []
    for i, phone in enumerate(phones[: spec.leads] if not spec.phones else phones):
        mandal = MANDALS[i % len(MANDALS)]
        kendra = f"SK{(i // 40) % 25 + 1:02d}"
        booth = f"B{(i // 8) % 300 + 1:03d}"
        rows.append(
            Lead(
                campaign_id=cid,
                phone=phone,
                name=f"{rng.choice(HINDI_NAMES)} {rng.choice(SURNAMES)}",
                language=rng.choice(("hi", "hi", "en")),
                timezone=spec.lead_zones[i % len(spec.lead_zones)],
                district_code=DISTRICT[0],
                district_name=DISTRICT[1],
                mandal_code=f"M{MANDALS.index(mandal) + 1:02d}",
                mandal_name=mandal,
                shakti_kendra_code=kendra,
                shakti_kendra_name=f"Shakti Kendra {kendra[2:]}",
                booth_code=booth,
                booth_name=f"Booth {booth[1:]}",
                status="ready",
                attempts=0,
                priority=0,
            )
        )
    async with db.transaction() as s:
        s.add_all(rows)
        for phone in spec.dnc:
            s.add(Dnc(phone=phone, campaign_id=None, source="test", added_at=datetime.now(UTC)))
    return {"campaign_id": cid, "campaign": name, "leads": len(rows)}


def _mobiles(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < n:
        seen.add(f"+919{rng.randrange(100000000, 999999999)}")
    return sorted(seen)


class Rig:
    """Database + simulator + controller, started and stopped together (``async with``)."""

    def __init__(self, spec: RigSpec, *, workdir: Path | None = None) -> None:
        self.spec = spec
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dialer-rig-"))
        self.db_url = spec.db_url or f"sqlite+aiosqlite:///{self.workdir / 'dialer.db'}"
        self.secret = secrets.token_urlsafe(18)
        self.agi_port = free_port()
        self.ami_port = 0
        self.clock = ScaledClock(spec.speed)
        self.sim: Any = None
        self.db: Any = None
        self.controller: Controller | None = None
        self.live: Any = None
        self.seeded: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self.settings: Settings | None = None

    async def __aenter__(self) -> Rig:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, on_sim: Callable[[Any], None] | None = None) -> None:
        """Seed the database, start the controller, then the simulator.

        The controller comes first (its AMI client keeps retrying until the simulator listens)
        so the simulated agents find FastAGI up when they dial in; ``on_sim`` runs right after
        the simulator started, before any simulated agent has acted (tests script them there).
        """
        from dialer.db.database import Database
        from dialer.simpbx.pbx import SimAgentSpec, SimPbx

        site = SiteSettings(calling_floor_start="00:00", calling_floor_end="23:59")
        self.db = Database(self.db_url, site=site)
        await self.db.upgrade()
        self.seeded = await seed_database(self.db, self.spec)
        agents = [
            SimAgentSpec(n, agent_pin(n, self.spec.shared_pin), f"seat{i + 1:03d}")
            for i, n in enumerate(agent_numbers(self.spec.agents))
        ]
        self.ami_port = free_port()
        self.sim = SimPbx(
            ami_port=self.ami_port,
            agi_port=self.agi_port,
            username="dialer",
            secret=self.secret,
            profile=self._profile(),
            speed=self.spec.speed,
            seed=self.spec.seed,
            agents=agents,
        )
        self.settings = self._settings(site)
        await self.start_controller()
        await self.sim.start()
        if on_sim is not None:
            on_sim(self.sim)

    def _profile(self) -> Any:
        from dialer.simpbx.profile import load_profile

        profile = self.spec.profile if self.spec.profile is not None else load_profile()
        if self.spec.agent_overrides or self.spec.called_overrides:
            from dataclasses import replace

            agents = replace(profile.agents, **self.spec.agent_overrides)
            called = replace(profile.called, **self.spec.called_overrides)
            profile = replace(profile, agents=agents, called=called)
        return profile

    def _settings(self, site: SiteSettings) -> Settings:
        trunk = TrunkSettings(
            name="carrier",
            dial_template="PJSIP/{number}@carrier",
            max_channels=self.spec.trunk_channels,
            max_cps=self.spec.trunk_cps,
        )
        return Settings(
            ami=AmiSettings(
                port=self.ami_port, secret=self.secret, backoff_initial=0.05, backoff_max=0.5
            ),
            agi=AgiSettings(port=self.agi_port),
            database=DatabaseSettings(
                url=self.db_url,
                spool_path=str(self.workdir / "outcomes.spool"),
                flush_interval=0.05,
            ),
            site=site,
            asterisk=AsteriskSettings(trunks=(trunk,)),
            engine=EngineSettings(
                abandon_after_seconds=self.spec.abandon_after,
                wrapup_seconds=self.spec.wrapup_seconds,
            ),
        )

    async def start_controller(self) -> Controller:
        """Start (or restart) the controller on the same database and simulator."""
        from dialer.live.state import MemoryLive

        assert self.settings is not None
        self.live = MemoryLive()
        ctl = Controller(
            self.settings,
            clock=self.clock,
            live=self.live,
            owner=self.spec.owner,
            stop_grace=self.spec.stop_grace,
        )
        self.controller = ctl
        self._task = asyncio.create_task(ctl.run(), name="controller")
        ready = asyncio.create_task(ctl.ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()
        return ctl

    async def kill_controller(self) -> None:
        """Stop the controller abruptly (its task is cancelled: no drain, no goodbye)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stop_controller(self) -> None:
        """Stop the controller cleanly."""
        if self.controller is not None and self._task is not None:
            self.controller.request_stop()
            await self._task
            self._task = None

    def drop_ami(self) -> int:
        """Cut every AMI connection the simulator has (a network fault); how many were cut."""
        sessions = list(self.sim._sessions)  # the simulator has no public fault switch
        for session in sessions:
            session.abort()
        return len(sessions)

    @property
    def engine(self) -> Any:
        """The running controller's engine."""
        assert self.controller is not None and self.controller.parts is not None
        return self.controller.parts.engine

    async def close(self) -> None:
        """Stop everything; the database file stays for inspection."""
        with contextlib.suppress(Exception):
            await self.stop_controller()
        if self.sim is not None:
            await self.sim.close()
        if self.db is not None:
            await self.db.close()


# --------------------------------------------------------------------------- dialer demo


DEMO_STOP_GRACE = 20.0


@dataclass
class DemoSummary:
    """What a demo run did, for the closing summary."""

    db_path: str
    minutes: float
    speed: float
    results: dict[str, int]
    dials: int
    live: int
    connects: int
    abandoned: int
    handoff_p50_ms: float | None
    handoff_p99_ms: float | None
    occupancy: float | None
    simulated_minutes: float
    dispositions: dict[str, int]


async def run_demo(
    minutes: float,
    speed: float,
    *,
    console: Any = None,
    agents: int = 35,
    leads: int = 3000,
    workdir: Path | None = None,
) -> DemoSummary:
    """The embedded default: simulator + SQLite + agents + the real controller + wallboard."""
    from rich.console import Console
    from rich.live import Live

    from dialer.live.wallboard import Extras, PaceMeter, render

    console = console or Console()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="dialer-demo-"))
    _quiet_logs(workdir / "demo.log")
    spec = RigSpec(
        agents=agents,
        leads=leads,
        speed=speed,
        seed=int(datetime.now().timestamp()),
        stop_grace=DEMO_STOP_GRACE,
    )
    rig = Rig(spec, workdir=workdir)
    console.print(
        f"[bold]dialer demo[/]: {agents} simulated agents, {leads} leads in "
        f"{DISTRICT[1]} district ({len(MANDALS)} mandals), speed x{speed:g}, "
        f"{minutes:g} min; database {rig.db_url.split('///', 1)[-1]}"
    )
    await rig.start()
    meter = PaceMeter()
    deadline = asyncio.get_running_loop().time() + minutes * 60.0
    try:
        with Live(console=console, refresh_per_second=2, screen=False, transient=False) as live:
            while asyncio.get_running_loop().time() < deadline:
                snap = await rig.live.snapshot()
                now = rig.clock.now()
                frame = render(snap, now, extras=Extras(pace=meter.update(snap, now)))
                live.update(frame)
                await asyncio.sleep(0.5)
    finally:
        engine = rig.engine if rig.controller and rig.controller.parts else None
        sim_minutes = (rig.clock.now() - 1000.0) / 60.0
        console.print(
            f"\nStopping: no new calls; up to {DEMO_STOP_GRACE:g} s for the calls in flight..."
        )
        await rig.close()
    handoffs = sorted(engine.stats.handoff_ms) if engine else []
    counters: dict[str, float] = {}
    if engine:
        for run in engine.campaigns.values():
            counters = dict(run.counters)
    results, dispositions = await _db_counts(rig.db_url)
    available = counters.get("available_seconds", 0.0)
    return DemoSummary(
        db_path=rig.db_url.split("///", 1)[-1],
        minutes=minutes,
        speed=speed,
        results=results,
        dials=int(counters.get("dials", 0)),
        live=int(counters.get("live", 0)),
        connects=int(counters.get("connects", 0)),
        abandoned=int(counters.get("abandoned", 0)),
        handoff_p50_ms=handoffs[len(handoffs) // 2] if handoffs else None,
        handoff_p99_ms=handoffs[min(len(handoffs) - 1, int(len(handoffs) * 0.99))]
        if handoffs
        else None,
        occupancy=counters.get("busy_seconds", 0.0) / available if available else None,
        simulated_minutes=sim_minutes,
        dispositions=dispositions,
    )


async def _db_counts(url: str) -> tuple[dict[str, int], dict[str, int]]:
    from sqlalchemy import func, select

    from dialer.db.database import Database
    from dialer.db.models import Call, Disposition

    db = Database(url)
    try:
        async with db.sessionmaker() as s:
            rows = await s.execute(select(Call.result, func.count()).group_by(Call.result))
            results = {str(r): int(n) for r, n in rows.all()}
            rows = await s.execute(
                select(Disposition.code, func.count()).group_by(Disposition.code)
            )
            dispositions = {str(c): int(n) for c, n in rows.all()}
    finally:
        await db.close()
    return results, dispositions


def _quiet_logs(path: Path) -> None:
    """Send logs to a file: the terminal belongs to the wallboard."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("dialer.engine").setLevel(logging.WARNING)


def summary_lines(s: DemoSummary) -> list[str]:
    """The closing summary as plain lines."""
    rate = s.abandoned / s.live if s.live else 0.0
    out = [
        f"Ran {s.minutes:g} min at x{s.speed:g} ({s.simulated_minutes:.0f} simulated minutes).",
        f"Dials {s.dials}, live answers {s.live}, connected {s.connects}, "
        f"abandoned {s.abandoned} ({rate:.1%} of live answers).",
    ]
    if s.handoff_p50_ms is not None and s.handoff_p99_ms is not None:
        out.append(
            f"Hand-off (live person and free agent -> both in the bridge): "
            f"p50 {s.handoff_p50_ms:.1f} ms, p99 {s.handoff_p99_ms:.1f} ms (real time)."
        )
    if s.occupancy is not None:
        out.append(f"Agent occupancy (talk + wrap-up over available time): {s.occupancy:.0%}.")
    if s.results:
        settled = {k: v for k, v in s.results.items() if k != "None"}
        parts = ", ".join(f"{k} {v}" for k, v in sorted(settled.items(), key=lambda kv: -kv[1]))
        out.append(f"Ledger results: {parts}.")
        if "None" in s.results:
            out.append(
                f"{s.results['None']} call(s) were still up at the stop: their rows stay open "
                "until the next start settles them (restart recovery)."
            )
    if s.dispositions:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(s.dispositions.items()))
        out.append(f"Dispositions by code: {parts}.")
    out.append(f"Database: {s.db_path}")
    return out
