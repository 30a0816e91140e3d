"""The supervisor CLI against a controller serving the Redis bus (real Redis, real database)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner
from sqlalchemy import select

from dialer.cli import main
from dialer.config import AsteriskSettings, EngineSettings, Settings, TrunkSettings
from dialer.db.campaigns import create_campaign
from dialer.db.database import Database
from dialer.db.models import Agent, AuditLog, Campaign
from dialer.domain.agent import AgentStatus
from dialer.engine.core import Engine
from dialer.engine.inputs import AmiLink, LoginIn
from dialer.engine.ports import CampaignConfig
from dialer.live.bus import AuditRecord, RedisBus, serve
from dialer.live.state import RedisLive, redis_live

from ..unit.engine_fakes import FakeAmi, FakeStore
from .test_live_bus import FakeEngine

pytestmark = pytest.mark.redis

AGENT_CHAN = "PJSIP/seat001-00000001"


class ControllerThread:
    """A controller in its own thread and event loop, as `dialer run` would be elsewhere."""

    def __init__(self, redis_url: str, prefix: str, make: Any) -> None:
        self.redis_url, self.prefix, self.make = redis_url, prefix, make
        self.ready = threading.Event()
        self.audit: list[AuditRecord] = []
        self.engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        client = aioredis.from_url(self.redis_url, decode_responses=True)
        bus = RedisBus(client, self.prefix, heartbeat_interval=0.2)

        async def record(entry: AuditRecord) -> None:
            self.audit.append(entry)

        async with redis_live(client, self.prefix) as live:
            self.engine = await self.make(live)
            self._task = asyncio.create_task(serve(bus, self.engine.submit, audit=record))
            await bus.ready.wait()
            await live.flush()
            self.ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            stop = getattr(self.engine, "stop", None)
            if stop is not None:
                await stop(grace=0)
        await client.aclose()

    def __enter__(self) -> ControllerThread:
        self._thread.start()
        assert self.ready.wait(10), "controller did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._task is not None
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


@pytest.fixture
def env(redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text("")
    yield {
        "DIALER_CONFIG": str(cfg),
        "DIALER_REDIS_URL": redis_url,
        "DIALER_REDIS_KEY_PREFIX": redis_prefix,
        "DIALER_REDIS_COMMAND_TIMEOUT": "5",
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
    }
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=redis_prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def dialer(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


async def fake_engine(live: Any) -> FakeEngine:
    engine = FakeEngine(live)
    engine.publish_all()
    return engine


def test_agent_commands_reach_the_controller(env: dict[str, str]) -> None:
    with ControllerThread(
        env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], fake_engine
    ) as c:
        code, out = dialer(env, "agents", "pause", "1001", "--reason", "lunch")
        assert (code, out.strip()) == (0, "agent 1001 PAUSED")
        code, out = dialer(env, "agents", "pause", "1001", "--json")
        assert code == 1 and json.loads(out)["code"] == "illegal_transition"
        code, out = dialer(env, "agents", "unpause", "1001")
        assert code == 0 and "READY" in out
        code, out = dialer(env, "agents", "pause", "1001", "--reason", "tea; rm -rf")
        assert code == 1 and "short code" in out
    assert c.engine.agents["1001"] == "READY"
    assert [(a.command, a.code, a.args.get("reason")) for a in c.audit] == [
        ("agent.pause", "ok", "lunch"),
        ("agent.pause", "illegal_transition", "break"),
        ("agent.unpause", "ok", None),
    ]


def test_agents_list_and_queue_status_read_live_state(env: dict[str, str]) -> None:
    async def roster() -> None:
        db = Database(env["DIALER_DATABASE_URL"])
        await db.upgrade()
        async with db.transaction() as s:
            s.add(Agent(number="1002", name="Ravi"))
        await db.close()

    asyncio.run(roster())
    with ControllerThread(
        env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], fake_engine
    ) as c:
        assert dialer(env, "agents", "pause", "1002", "--reason", "meeting")[0] == 0
        asyncio.run_coroutine_threadsafe(c.engine.live.flush(), c._loop).result(5)  # type: ignore[arg-type]
        code, out = dialer(env, "agents", "list", "--json")
        rows = {r["agent"]: r for r in json.loads(out)}
        assert code == 0 and rows["1002"]["state"] == "PAUSED"
        assert rows["1002"]["reason"] == "meeting" and rows["1001"]["state"] == "READY"
        assert rows["1002"]["name"] == "Ravi" and "name" not in rows["1001"]  # from the record
        code, out = dialer(env, "agents", "list")
        assert code == 0 and "PAUSED" in out and "meeting" in out
        code, out = dialer(env, "queue", "status", "--json")
        queues = {q["name"]: q for q in json.loads(out)}
        assert queues["survey"]["status"] == "paused"
        code, out = dialer({**env, "COLUMNS": "200"}, "wallboard", "--once")
        assert code == 0 and "dialer wallboard" in out and "survey" in out and "1002" in out


def test_monitor_is_sent_to_a_supervisor_phone(env: dict[str, str]) -> None:
    with ControllerThread(
        env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], fake_engine
    ) as c:
        code, out = dialer(env, "monitor", "whisper", "1001", "--to", "2")
        assert code == 0, out
        code, out = dialer(env, "monitor", "barge", "1001", "--to", "sup09")
        assert code == 1 and "not a supervisor phone" in out
    monitor = [cmd for cmd in c.engine.seen if cmd.name == "monitor"]
    assert [dict(m.args) for m in monitor] == [{"agent": "1001", "mode": "whisper", "to": "sup02"}]


def test_no_controller_and_no_redis_are_one_line_errors(env: dict[str, str]) -> None:
    code, out = dialer(env, "agents", "pause", "1001")
    assert code == 1 and out.count("\n") == 1 and "no controller is running" in out
    code, out = dialer({**env, "DIALER_REDIS_URL": ""}, "queue", "status")
    assert code == 1 and "no Redis configured" in out


def test_redis_password_never_printed(env: dict[str, str]) -> None:
    url = env["DIALER_REDIS_URL"].replace("redis://", "redis://nobody:s3cr3t-pw@")
    code, out = dialer({**env, "DIALER_REDIS_URL": url}, "agents", "list")
    assert code == 1 and "s3cr3t-pw" not in out and "***" in out


def test_campaign_start_saves_audits_and_tells_the_controller(env: dict[str, str]) -> None:
    db = Database(env["DIALER_DATABASE_URL"])

    async def setup() -> None:
        await db.upgrade()
        async with db.transaction() as s:
            await create_campaign(s, "survey")
        await db.close()

    asyncio.run(setup())
    # No controller: saved, and said so.
    code, out = dialer(env, "campaign", "pause", "survey")
    assert code == 0 and "paused (saved)" in out and "no controller is running" in out
    with ControllerThread(
        env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], fake_engine
    ) as c:
        code, out = dialer(env, "campaign", "start", "survey", "--json")
        assert code == 0, out
        data = json.loads(out)
        assert data["status"] == "running" and data["controller"]["code"] == "ok"
        code, out = dialer(env, "campaign", "stop", "nope")
        assert code == 1 and "nope" in out
    assert c.engine.campaigns["survey"] == "running"

    async def rows() -> tuple[str, list[tuple[str, str, str]]]:
        async with db.transaction() as s:
            status = (await s.execute(select(Campaign.status))).scalar_one()
            audit = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
            out = [(a.actor, a.action, a.target) for a in audit]
        await db.close()
        return status, out

    status, audit = asyncio.run(rows())
    assert status == "running"
    assert audit == [
        ("default", "campaign.pause", "survey"),
        ("default", "campaign.start", "survey"),
    ]
    assert [(a.actor, a.command) for a in c.audit] == [("default", "campaign.start")]


def _engine_settings() -> Settings:
    trunk = TrunkSettings(name="carrier", dial_template="Local/{number}@sim", max_cps=100)
    return Settings(
        asterisk=AsteriskSettings(trunks=(trunk,)),
        engine=EngineSettings(tick_interval=0.02),
    )


async def real_engine(live: RedisLive) -> Engine:
    """The real single-writer engine with fake Asterisk and record, one agent logged in."""
    store = FakeStore()
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode="progressive", status="paused")
    engine = Engine(_engine_settings(), store, FakeAmi(), live=live)
    engine.store_ = store  # type: ignore[attr-defined]
    asyncio.create_task(engine.run())  # noqa: RUF006 - stopped through engine.stop()
    engine.add_campaign(store.campaigns_[1])
    engine.post(AmiLink(True))
    reply = await engine.ask(lambda f: LoginIn("1001", AGENT_CHAN, "seat001", (1,), False, f))
    assert reply.ok, reply
    return engine


def test_cli_against_the_real_engine(env: dict[str, str]) -> None:
    with ControllerThread(
        env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], real_engine
    ) as c:
        code, out = dialer(env, "agents", "pause", "1001", "--reason", "lunch")
        assert code == 0, out
        assert c.engine.agents["1001"].status is AgentStatus.PAUSED
        assert c.engine.agents["1001"].reason == "lunch"
        asyncio.run_coroutine_threadsafe(c.engine.live.flush(), c._loop).result(5)  # type: ignore[arg-type]
        code, out = dialer(env, "agents", "list", "--json")
        assert {r["agent"]: r["state"] for r in json.loads(out)} == {"1001": "PAUSED"}
        code, out = dialer(env, "monitor", "listen", "1001", "--to", "sup01")
        assert code == 0, out
        code, out = dialer(env, "agents", "logout", "9999")
        assert code == 1 and "unknown_agent" in out
    spy = [o for o in c.engine.ami.actions if o[0] == "Originate"]
    headers = dict(spy[0][1])
    assert headers["Channel"] == "PJSIP/sup01" and headers["Application"] == "ChanSpy"
    assert headers["Data"] == f"{AGENT_CHAN},q"
    assert [a.command for a in c.audit] == ["agent.pause", "monitor", "agent.logout"]
    assert c.audit[0].at <= datetime.now(UTC)


def test_campaign_set_tells_a_running_controller_to_reload(env: dict[str, str]) -> None:
    db = Database(env["DIALER_DATABASE_URL"])

    async def setup() -> None:
        await db.upgrade()
        async with db.transaction() as s:
            await create_campaign(s, "survey")
        await db.close()

    asyncio.run(setup())
    with ControllerThread(
        env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], fake_engine
    ) as c:
        code, out = dialer(env, "campaign", "set", "survey", "--pacing-target", "2.5")
        assert code == 0 and "controller: noted" in out, out
    assert [(m.name, dict(m.args)) for m in c.engine.seen] == [
        ("campaign.reload", {"campaign": "survey"})
    ]


def test_report_commands_write_table_csv_png_and_json(env: dict[str, str], tmp_path: Path) -> None:
    from .test_reports import seed

    db = Database(env["DIALER_DATABASE_URL"])

    async def setup() -> None:
        await db.upgrade()
        await seed(db)
        await db.close()

    asyncio.run(setup())
    wide = {**env, "COLUMNS": "200"}
    code, out = dialer(
        wide,
        "report",
        "daily",
        "--from",
        "2026-11-28",
        "--csv",
        str(tmp_path / "d.csv"),
        "--png",
        str(tmp_path / "d.png"),
    )
    assert code == 0, out
    assert "Daily summary 2026-11-28" in out and "25.0%" in out
    assert (tmp_path / "d.csv").read_text(encoding="utf-8-sig").startswith("Day,Campaign,Dials")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    code, out = dialer(wide, "report", "abandonment", "--to", "2026-11-28", "--json")
    rows = json.loads(out)["rows"]
    assert code == 0 and {r["Campaign"]: r["30d abandoned"] for r in rows}["survey"] == 7
    code, out = dialer(wide, "report", "coverage", "--from", "2026-11-28", "--level", "district")
    assert code == 0 and "Indore (D1)" in out and "Dewas (D2)" in out
    code, out = dialer(wide, "report", "agents", "--from", "2026-11-28", "--campaign", "nope")
    assert code == 1 and "no campaign" in out
    code, out = dialer(wide, "report", "daily", "--from", "2026-11-28", "--to", "2026-11-01")
    assert code == 2 and "before --from" in out


def test_wallboard_figures_from_the_database(tmp_path: Path) -> None:
    from datetime import date

    from dialer.live.supervisor import floor_figures

    from .test_reports import seed

    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    settings = Settings.model_validate({"database": {"url": url}})

    async def run() -> tuple[dict[str, float], dict[str, float]]:
        db = Database(url)
        await db.upgrade()
        await seed(db)
        await db.close()
        return await floor_figures(settings, date(2026, 11, 28))

    month, occupancy = asyncio.run(run())
    assert month == {"survey": pytest.approx(7 / 25), "relay": 0.0}
    # 1001: 180 s busy of 5400 s available; 1002: 90 s of 7200 s.
    assert occupancy["survey"] == pytest.approx(270 / 12600)


async def two_agents(live: RedisLive) -> Engine:
    """The real engine with 1001 idle the longest, then 1002, both on campaign spring."""
    store = FakeStore(known_agents={"1001", "1002", "1003"})
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode="progressive", status="paused")
    engine = Engine(_engine_settings(), store, FakeAmi(), live=live)
    engine.store_ = store  # type: ignore[attr-defined]
    asyncio.create_task(engine.run())  # noqa: RUF006 - stopped through engine.stop()
    engine.add_campaign(store.campaigns_[1])
    engine.post(AmiLink(True))
    for n, agent in enumerate(("1001", "1002"), start=1):
        chan, seat = f"PJSIP/seat00{n}-0000000{n}", f"seat00{n}"
        reply = await engine.ask(functools.partial(LoginIn, agent, chan, seat, (1,), False))
        assert reply.ok, reply
    return engine


def test_queue_assign_decides_who_takes_the_next_inbound_caller(env: dict[str, str]) -> None:
    from dialer.domain.inbound_queue import QueuedCaller
    from dialer.engine.inbound import EngineDesk

    with ControllerThread(env["DIALER_REDIS_URL"], env["DIALER_REDIS_KEY_PREFIX"], two_agents) as c:
        loop = c._loop
        assert loop is not None

        def next_inbound_caller(call_id: str) -> str | None:
            async def join() -> str | None:
                ticket = EngineDesk(c.engine).join(QueuedCaller(call_id, c.engine.clock.now()))
                await c.engine.barrier()
                return ticket.offer.agent_id if ticket.offer else None

            return asyncio.run_coroutine_threadsafe(join(), loop).result(5)

        code, out = dialer(env, "queue", "assign", "1001", "--priority", "outbound", "--json")
        assert code == 0, out
        data = json.loads(out)
        assert (data["code"], data["work"], data["saved"]) == ("ok", "outbound_first", True)
        # 1001 has been idle longer, but now takes inbound callers only as overflow.
        assert next_inbound_caller("in-1") == "1002"
        assert c.engine.store_.work == {"1001": ("outbound_first", None)}
        # The positional form moves an agent, as before.
        code, out = dialer(env, "queue", "assign", "1001", "spring")
        assert (code, out.strip()) == (
            0,
            "agent 1001: campaign spring, blended, outbound first (saved)",
        )
        # Clear refusals; the conflicting ones never reach the controller.
        code, out = dialer(env, "queue", "assign", "1001", "--inbound-only", "--outbound-only")
        assert code == 2 and "--inbound-only and --outbound-only conflict" in out
        code, out = dialer(
            env, "queue", "assign", "1001", "--inbound-only", "--priority", "inbound"
        )
        assert code == 2 and "blended agents only" in out
        code, out = dialer(env, "queue", "assign", "1001")
        assert code == 2 and "say what to change" in out
        code, out = dialer(env, "queue", "assign", "1001", "--campaign", "autumn")
        assert code == 1 and "refused (unknown_campaign)" in out
        code, out = dialer(env, "queue", "assign", "9999", "--inbound-only")
        assert code == 1 and "refused (unknown_agent)" in out, out
        # 1003 is in the record but not logged in: kept for their next login.
        code, out = dialer(env, "queue", "assign", "1003", "--inbound-only")
        assert code == 0 and "not logged in" in out and "next login" in out, out
        assert c.engine.store_.work["1003"] == ("inbound_only", None)
        code, out = dialer(env, "queue", "assign", "--help")
        assert code == 0 and "--priority [inbound|outbound]" in out and "overflow" in out
        asyncio.run_coroutine_threadsafe(c.engine.live.flush(), loop).result(5)
        code, out = dialer(env, "agents", "list", "--json")
        assert {r["agent"]: r["work"] for r in json.loads(out)} == {
            "1001": "outbound_first",
            "1002": "inbound_first",
        }
        code, out = dialer({**env, "COLUMNS": "200"}, "agents", "list")
        assert code == 0 and "out first" in out
        code, out = dialer(env, "queue", "status", "--json")
        rows = {r["name"]: r for r in json.loads(out)}
        assert rows["spring"]["work"] == {"inbound_first": 1, "outbound_first": 1}
    assert [(a.command, a.code, dict(a.args)) for a in c.audit] == [
        ("queue.assign", "ok", {"agent": "1001", "priority": "outbound"}),
        ("queue.assign", "ok", {"agent": "1001", "campaign": "spring"}),
        ("queue.assign", "unknown_campaign", {"agent": "1001", "campaign": "autumn"}),
        ("queue.assign", "unknown_agent", {"agent": "9999", "work": "inbound_only"}),
        ("queue.assign", "ok", {"agent": "1003", "work": "inbound_only"}),
    ]
    assert all(a.actor == "default" for a in c.audit)
