"""The composition root: builds every part of the controller and runs them under one TaskGroup.

``Controller(settings).run()`` is ``dialer run``; ``dialer demo`` and the end-to-end tests use
the same object with an in-process live state and a scaled clock.  Order at start: database
(and the ledger writer, which replays a spool left from an outage), restart recovery (ledger rows
a previous run left open), the FastAGI server, then the AMI link; the engine's single task runs
from the start.  Shutdown (SIGINT/SIGTERM, or ``request_stop``): stop dialling, let calls in
flight end for a grace period, flush every record, close the links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialer.agi.server import AgiRouter, AgiServer
from dialer.agi_scripts.agent import AgentScripts
from dialer.agi_scripts.ivr import register as register_ivr
from dialer.agi_scripts.outbound import OutboundScripts
from dialer.ami.client import AmiClient
from dialer.ami.errors import AmiActionError
from dialer.config import Settings
from dialer.engine.core import ENGINE_AMI_EVENTS, Engine
from dialer.engine.inputs import AmiLink, LoginIn, RecoverIn
from dialer.engine.ports import AmiReply, Clock, RealClock

log = logging.getLogger("dialer.app")

AGENT_CONTEXTS = ("dialer-agent-loop", "dialer-agent-wrapup")
ADOPT_EVERY = 5.0  # seconds between looks for agent lines the engine does not know
# ... once a look found none: each look lists every channel (about 1,000 list events with 500
# agents, a burst that held up hand-offs on both sides of the link), so look seldom then.
ADOPT_IDLE_EVERY = 30.0


class AmiPortAdapter:
    """The engine's AMI port over :class:`AmiClient` (an Error response is a reply, not a raise)."""

    def __init__(self, client: AmiClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self.client.connected

    async def send(self, action: str, headers: Sequence[tuple[str, str]]) -> AmiReply:
        """Send one action; link trouble raises (AmiLinkLost, AmiTimeout, AmiNotConnected)."""
        try:
            result = await self.client.action(action, list(headers), timeout=self.timeout)
        except AmiActionError as exc:
            return AmiReply(False, str(exc))
        events = tuple(_headers(m.headers) for m in result.events)
        return AmiReply(result.ok, result.message, events)


def _headers(pairs: Sequence[tuple[str, str]]) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


@dataclass(frozen=True, slots=True)
class LoginSpec:
    """An agent found holding on a line (adoption after a restart)."""

    agent: str
    channel: str
    seat: str
    campaigns: tuple[int, ...]
    paused: bool


@dataclass
class Parts:
    """What a running controller is made of (for the demo, tests and benchmarks)."""

    engine: Engine
    ami: AmiClient
    agi: AgiServer
    db: Any
    writer: Any
    store: Any


class Controller:
    """``dialer run``: every part, one TaskGroup, clean start and stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        live: Any = None,
        migrate: bool = False,
        owner: str = "",
        stop_grace: float = 10.0,
    ) -> None:
        self.settings = settings
        self.clock = clock or RealClock()
        self.live = live
        self.migrate = migrate
        self.owner = owner or f"{settings.site.name}-ctl"
        self.stop_grace = stop_grace
        self.parts: Parts | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._adopt_now = asyncio.Event()

    def request_stop(self) -> None:
        """Begin a clean shutdown (what SIGINT/SIGTERM do)."""
        self._stop.set()

    async def run(self, *, signals: bool = False) -> None:
        """Run until stopped; with ``signals`` SIGINT/SIGTERM stop it cleanly."""
        from dialer.db.database import Database
        from dialer.engine.dbthread import DbThread, WriterProxy
        from dialer.engine.store import DbStore

        s = self.settings
        loop = asyncio.get_running_loop()
        if signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop)
        # The record lives on its own thread and loop (see dialer.engine.dbthread): database
        # work never holds up a hand-off.  The IVR keeps a reader on this loop.
        dbt = DbThread(s, migrate=self.migrate)
        await dbt.start()
        log.info("database: %s (%s)", _masked_db(s), dbt.db.dialect)
        writer = WriterProxy(dbt)
        db = Database.from_settings(s)
        store = DbStore(dbt.db, writer, self.owner, dbt)
        live, live_close = await self._live()
        client = AmiClient(s.ami, on_connect=self._on_connect)
        engine = Engine(
            s,
            store,
            AmiPortAdapter(client, s.ami.action_timeout),
            live=live,
            clock=self.clock,
            owner=self.owner,
        )
        router = AgiRouter()
        AgentScripts(engine, store).register(router)
        OutboundScripts(engine).register(router)
        # inbound (issue 10): callers on the DIDs; a flow file with problems stops the start here
        register_ivr(router, engine, s, db, writer, self.owner)
        server = AgiServer(s.agi, router)
        self.parts = Parts(engine, client, server, db, writer, store)
        # Only the events the engine acts on go on its queue: the rest (a CoreShowChannels
        # listing alone is one event per channel) would only wait in line before hand-offs.
        client.subscribe(engine.on_ami_event, *ENGINE_AMI_EVENTS)
        try:
            for config in await store.running_campaigns():
                engine.add_campaign(config)
                log.info("campaign %s (%s): %s", config.id, config.name, config.dial_mode)
            # issue 9: agents' work assignments (queue assign) before any agent logs in
            work = await store.agent_work()
            engine.inbound.load_work(work)
            if work:
                log.info("work assignments kept for %d agent(s)", len(work))
            closed = await store.close_agent_sessions()
            if closed:
                log.info("recovery: %d agent session(s) left open by the previous run", closed)
            released = await store.release_stale_reservations()
            if released:
                log.info("recovery: %d lead reservation(s) of the previous run released", released)
            orphans = await store.open_calls()
            if orphans:
                log.info("recovery: %d call(s) left open by the previous run", len(orphans))
                engine.post(RecoverIn(list(orphans)))
            await server.start()
            log.info("FastAGI: listening on %s:%s", s.agi.listen_host, server.port)
            log.info("AMI: connecting to %s:%s as %s", s.ami.host, s.ami.port, s.ami.username)
            await self._run_tasks(engine, client, live)
        finally:
            with contextlib.suppress(Exception):
                await server.close()
            with contextlib.suppress(Exception):
                await client.close()
            written = writer.written
            await dbt.stop()
            with contextlib.suppress(Exception):
                await live_close()
            await db.close()
            if signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            log.info("stopped: %d record(s) written", max(written, dbt.writer.written))

    async def _run_tasks(self, engine: Engine, client: AmiClient, live: Any) -> None:
        async with asyncio.TaskGroup() as tg:
            engine_task = tg.create_task(engine.run(), name="engine")
            ami_task = tg.create_task(client.run(), name="ami")
            watch = tg.create_task(self._watch_link(engine, client), name="ami-watch")
            flusher = tg.create_task(self._flush_live(live), name="live-flush")
            bus = tg.create_task(self._serve_bus(engine), name="bus")
            adopt = tg.create_task(self._adoption_loop(client), name="adopt")
            self.ready.set()
            stop = tg.create_task(self._stop.wait())
            await asyncio.wait({stop, engine_task, ami_task}, return_when=asyncio.FIRST_COMPLETED)
            log.info("stopping: no new calls; %.0f s for calls in flight", self.stop_grace)
            await engine.stop(self.stop_grace)
            for task in (ami_task, watch, flusher, bus, adopt, stop):
                task.cancel()

    async def _on_connect(self, client: AmiClient) -> None:
        if self.parts is not None:
            self.parts.engine.post(AmiLink(True))
            self._adopt_now.set()

    async def _adoption_loop(self, client: AmiClient) -> None:
        """Look for agents holding on lines the engine does not know: at each connect, then
        every few seconds while there are such lines (an agent on a call at a restart is taken
        back once it holds), every half minute when the last look found none."""
        pause = ADOPT_EVERY
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._adopt_now.wait(), pause)
            self._adopt_now.clear()
            pause = ADOPT_EVERY
            if client.connected:
                try:
                    if not await self._adopt_agents(client):
                        pause = ADOPT_IDLE_EVERY
                except Exception:  # adoption is a convenience: never let it stop the controller
                    log.exception("agent adoption failed")

    async def _watch_link(self, engine: Engine, client: AmiClient) -> None:
        """Tell the engine when the link drops (the client reconnects by itself)."""
        was = False
        while True:
            now = client.connected
            if was and not now:
                engine.post(AmiLink(False))
            was = now
            await asyncio.sleep(0.05)

    async def _adopt_agents(self, client: AmiClient) -> bool:
        """After a restart, agents still holding on their nailed-up lines are logged back in.

        True unless the listing showed no agent line the engine did not know (or failed).
        """
        assert self.parts is not None
        engine = self.parts.engine
        limit = self.settings.ami.action_timeout
        try:
            listing = await client.action("CoreShowChannels", timeout=limit)
        except Exception as exc:
            log.info("agent adoption skipped: %s", exc)
            return True
        unknown = False
        for item in listing.events:
            channel = item.get("Channel") or ""
            if item.get("Context") not in AGENT_CONTEXTS or channel in engine.by_channel:
                continue
            unknown = True
            if item.get("BridgeId"):
                continue  # on a call the engine does not know: adopt once back in the loop
            try:
                agent = await client.action("Getvar", {"Channel": channel, "Variable": "AGENTID"})
                state = await client.action(
                    "Getvar", {"Channel": channel, "Variable": "AGENT_STATE"}
                )
            except Exception:
                continue
            number = agent.response.get("Value") or ""
            known = engine.agents.get(number)
            if not number or (known is not None and known.logged_in):
                continue
            if (state.response.get("Value") or "") not in ("READY", "PAUSED"):
                continue
            campaigns = await self.parts.store.agent_campaigns(number)
            seat = channel.split("/", 1)[-1].rsplit("-", 1)[0]
            paused = (state.response.get("Value") or "") == "PAUSED"
            reply = await self._login(engine, LoginSpec(number, channel, seat, campaigns, paused))
            log.info("adopted agent %s on %s: %s", number, channel, reply.message)
        return unknown

    @staticmethod
    async def _login(engine: Engine, spec: LoginSpec) -> Any:
        def make(fut: asyncio.Future[Any]) -> LoginIn:
            return LoginIn(spec.agent, spec.channel, spec.seat, spec.campaigns, spec.paused, fut)

        return await engine.ask(make)

    async def _flush_live(self, live: Any) -> None:
        flush = getattr(live, "flush", None)
        if flush is None:
            return
        while True:
            await asyncio.sleep(0.25)
            with contextlib.suppress(Exception):
                await flush()

    async def _serve_bus(self, engine: Engine) -> None:
        url = self.settings.redis.url.get_secret_value()
        if not url:
            return
        from dialer.db import ledger as lg
        from dialer.live.bus import AuditRecord, RedisBus, serve

        assert self.parts is not None
        writer = self.parts.writer

        async def audit(rec: AuditRecord) -> None:
            writer.record(
                lg.AuditRecorded(
                    actor=rec.actor,
                    action=rec.command,
                    at=rec.at,
                    target=str(rec.args.get("agent") or rec.args.get("campaign") or ""),
                    params=dict(rec.args),
                    result=rec.code,
                )
            )

        async with RedisBus.connect(url, self.settings.redis.key_prefix) as bus:
            log.info("supervisor command bus: serving")
            await serve(bus, engine.submit, audit=audit)

    async def _live(self) -> tuple[Any, Any]:
        """The live-state publisher: the one given, Redis when configured, else in process."""
        if self.live is not None:
            return self.live, _noop
        url = self.settings.redis.url.get_secret_value()
        from dialer.live.state import MemoryLive

        if not url:
            return MemoryLive(), _noop
        from dialer.live.connection import open_redis
        from dialer.live.state import RedisLive

        redis = open_redis(url)
        live = RedisLive(redis, self.settings.redis.key_prefix)
        with contextlib.suppress(Exception):
            live.reset()
        return live, redis.aclose


async def _noop() -> None:
    return None


def _masked_db(settings: Settings) -> str:
    url = settings.database.url.get_secret_value()
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"
