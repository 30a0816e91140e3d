"""The supervisor command bus and live state over a real Redis (and the in-process variant)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.engine.commands import (
    ILLEGAL_TRANSITION,
    UNKNOWN_AGENT,
    Command,
    Reply,
    error,
    ok,
    validate,
)
from dialer.live.bus import (
    AuditRecord,
    BusError,
    BusTimeout,
    LocalBus,
    NoController,
    RedisBus,
    serve,
    supervisor_acl_rules,
)
from dialer.live.state import MemoryLive, RedisLive, redis_live

pytestmark = pytest.mark.redis


class FakeEngine:
    """A tiny engine: agents READY/PAUSED, campaigns running/paused, published to live state."""

    def __init__(self, live: Any, agents: tuple[str, ...] = ("1001", "1002")) -> None:
        self.live = live
        self.agents = {a: "READY" for a in agents}
        self.campaigns: dict[str, str] = {"survey": "paused"}
        self.seen: list[Command] = []
        self.gate: asyncio.Event | None = None  # when set, commands wait on it (timeouts)
        self.started = asyncio.Event()

    def publish_all(self) -> None:
        """What a controller does at start: reset, then everything it knows."""
        self.live.reset()
        for agent, state in self.agents.items():
            self.live.agent(agent, {"state": state, "since": 1000.0})
        for name, status in self.campaigns.items():
            self.live.counters(name, {"name": name, "status": status})

    async def submit(self, cmd: Command) -> Reply:
        """Apply one command, as the real engine would."""
        self.seen.append(cmd)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        bad = validate(cmd)
        if bad is not None:
            return bad
        if cmd.name in ("agent.pause", "agent.unpause"):
            agent = str(cmd.args["agent"])
            if agent not in self.agents:
                return error(UNKNOWN_AGENT, f"no agent {agent}")
            want = "PAUSED" if cmd.name == "agent.pause" else "READY"
            if self.agents[agent] == want:
                return error(ILLEGAL_TRANSITION, f"agent {agent} is already {want}")
            self.agents[agent] = want
            self.live.agent(agent, {"state": want, "reason": cmd.args.get("reason")})
            return ok(f"agent {agent} {want}", state=want)
        if cmd.name == "campaign.start":
            self.campaigns[str(cmd.args["campaign"])] = "running"
            return ok("started")
        return ok("noted")


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[Any]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@contextlib.asynccontextmanager
async def controller(
    redis_url: str, prefix: str, engine_factory: Any, audit: list[AuditRecord]
) -> AsyncIterator[Any]:
    """A controller: live state publisher plus the bus served by a fake engine."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    bus = RedisBus(client, prefix, heartbeat_interval=0.2)

    async def record(entry: AuditRecord) -> None:
        audit.append(entry)

    async with redis_live(client, prefix) as live:
        engine = engine_factory(live)
        engine.publish_all()
        await live.flush()
        task = asyncio.create_task(serve(bus, engine.submit, audit=record))
        try:
            async with asyncio.timeout(5):
                await bus.ready.wait()
            yield engine
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await client.aclose()


async def test_command_reaches_engine_changes_state_and_is_audited(
    redis_url: str, redis_prefix: str, redis_client: Any
) -> None:
    audit: list[AuditRecord] = []
    async with controller(redis_url, redis_prefix, FakeEngine, audit) as engine:
        async with RedisBus.connect(redis_url, redis_prefix, within=5) as cli:
            assert await cli.controller_running()
            reply = await cli.request("agent.pause", {"agent": "1001", "reason": "lunch"})
            assert reply.ok and reply.data["state"] == "PAUSED"
            again = await cli.request("agent.pause", {"agent": "1001", "reason": "lunch"})
            assert not again.ok and again.code == ILLEGAL_TRANSITION
            missing = await cli.request("agent.pause", {"agent": "9999"})
            assert missing.code == UNKNOWN_AGENT
            await engine.live.flush()
            snap = await RedisLive(redis_client, redis_prefix).snapshot()
    assert engine.agents["1001"] == "PAUSED"
    assert snap.agents["1001"]["state"] == "PAUSED"
    assert snap.agents["1001"]["reason"] == "lunch"
    assert snap.agents["1002"]["state"] == "READY"
    assert [(a.command, a.ok, a.code) for a in audit] == [
        ("agent.pause", True, "ok"),
        ("agent.pause", False, ILLEGAL_TRANSITION),
        ("agent.pause", False, UNKNOWN_AGENT),
    ]
    assert {a.actor for a in audit} == {"default"}
    assert audit[0].args == {"agent": "1001", "reason": "lunch"}
    # The controller's heartbeat goes when it stops.
    assert not await redis_client.exists(redis_prefix + "ctl:heartbeat")


async def test_no_controller_is_a_clear_error_not_a_hang(redis_url: str, redis_prefix: str) -> None:
    async with RedisBus.connect(redis_url, redis_prefix, within=30) as cli:
        assert not await cli.controller_running()
        async with asyncio.timeout(2):  # far under the 30 s command timeout
            with pytest.raises(NoController, match="no controller is running"):
                await cli.request("status")


async def test_timeout_when_the_engine_does_not_answer(
    redis_url: str, redis_prefix: str, redis_client: Any
) -> None:
    audit: list[AuditRecord] = []
    async with controller(redis_url, redis_prefix, FakeEngine, audit) as engine:
        engine.gate = asyncio.Event()
        async with RedisBus.connect(redis_url, redis_prefix) as cli:
            with pytest.raises(BusTimeout, match="may have run"):
                await cli.request("agent.pause", {"agent": "1002"}, within=0.3)
        assert engine.started.is_set()
        engine.gate.set()


async def test_stale_command_left_by_a_timed_out_client_is_not_run(
    redis_url: str, redis_prefix: str, redis_client: Any
) -> None:
    # A command written while no controller served: it must not run when one starts later.
    await redis_client.set(redis_prefix + "ctl:heartbeat", "x", px=200)
    async with RedisBus.connect(redis_url, redis_prefix) as cli:
        with pytest.raises(BusTimeout, match="it was not run"):
            await cli.request("agent.pause", {"agent": "1001"}, within=0.2)
    # Simulate a client that died before withdrawing it: write one by hand, already stale.
    await redis_client.xadd(
        redis_prefix + "bus:in:default",
        {"c": '{"id": "old", "name": "agent.pause", "args": {"agent": "1001"}, "timeout": 0.001}'},
    )
    audit: list[AuditRecord] = []
    async with controller(redis_url, redis_prefix, FakeEngine, audit) as engine:
        async with RedisBus.connect(redis_url, redis_prefix) as cli:
            reply = await cli.request("agent.unpause", {"agent": "1002"})
    assert reply.code == ILLEGAL_TRANSITION  # 1002 was READY: the fresh command ran ...
    assert [c.name for c in engine.seen] == ["agent.unpause"]  # ... and only it
    assert engine.agents["1001"] == "READY"


async def test_state_is_rebuilt_after_a_controller_restart(
    redis_url: str, redis_prefix: str, redis_client: Any
) -> None:
    audit: list[AuditRecord] = []
    async with controller(redis_url, redis_prefix, FakeEngine, audit) as engine:
        engine.live.call("c-1", {"state": "ringing", "campaign": "survey"})
        engine.live.agent("1003", {"state": "TALKING"})
        engine.live.event({"kind": "launch", "call": "c-1"})
        await engine.live.flush()
        before = await RedisLive(redis_client, redis_prefix).snapshot()
    assert set(before.calls) == {"c-1"} and "1003" in before.agents
    assert before.events[-1]["kind"] == "launch"
    # The controller died; a new one starts with only agent 1001 logged in again.
    async with controller(
        redis_url, redis_prefix, lambda live: FakeEngine(live, agents=("1001",)), audit
    ):
        after = await RedisLive(redis_client, redis_prefix).snapshot()
    assert after.generation and after.generation != before.generation
    assert dict(after.calls) == {}
    assert set(after.agents) == {"1001"}
    assert after.events == ()
    assert after.counters["survey"]["status"] == "paused"


async def test_redis_live_coalesces_and_deletes(redis_client: Any, redis_prefix: str) -> None:
    live = RedisLive(redis_client, redis_prefix)
    live.reset()
    for n in range(50):
        live.agent("7", {"state": "READY" if n % 2 else "PAUSED", "n": n})
    live.call("a", {"state": "ringing"})
    live.call("b", {"state": "waiting"})
    live.call("a", None)
    live.counters("survey", {"dials": 3})
    await live.flush()
    snap = await live.snapshot()
    assert snap.agents["7"] == {"state": "READY", "n": 49}
    assert set(snap.calls) == {"b"}
    assert snap.counters["survey"]["dials"] == 3
    assert snap.updated_at is not None


async def test_redis_live_keeps_pending_state_when_redis_fails(redis_prefix: str) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", decode_responses=True)
    live = RedisLive(dead, redis_prefix)
    live.agent("1", {"state": "READY"})
    live.event({"kind": "x"})
    with pytest.raises(Exception):  # noqa: B017 - any connection error will do
        await live.flush()
    live.agent("1", {"state": "PAUSED"})
    assert live._pending[("live:agents", "1")] == {"state": "PAUSED"}
    assert len(live._events) == 1
    await dead.aclose()


async def test_follow_yields_events_as_published(redis_client: Any, redis_prefix: str) -> None:
    live = RedisLive(redis_client, redis_prefix)
    live.event({"kind": "launch", "call": "y"})
    await live.flush()
    stream = live.follow(after="0", block_ms=100)
    async with asyncio.timeout(3):
        assert (await anext(stream))["call"] == "y"
        pending = asyncio.ensure_future(anext(stream))
        live.event({"kind": "abandon", "call": "z"})
        await live.flush()
        got = await pending
    assert got["kind"] == "abandon" and "at" in got
    await stream.aclose()


async def test_per_supervisor_acl_identity_is_the_audited_actor(
    redis_url: str, redis_prefix: str, redis_client: Any
) -> None:
    user = f"sup-test-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(24)
    await redis_client.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", *supervisor_acl_rules(user, redis_prefix)
    )
    try:
        audit: list[AuditRecord] = []
        sup_url = redis_url.replace("redis://", f"redis://{user}:{password}@")
        async with controller(redis_url, redis_prefix, FakeEngine, audit) as engine:
            async with RedisBus.connect(sup_url, redis_prefix) as cli:
                assert await cli.identity() == user
                reply = await cli.request("agent.pause", {"agent": "1002", "reason": "break"})
                assert reply.ok
                live = await RedisLive(cli._r, redis_prefix).snapshot()  # read-only is allowed
                assert "1001" in live.agents
                # The ACL keeps this supervisor out of the live state and others' inboxes.
                with pytest.raises(Exception, match=r"permission|NOPERM"):
                    await cli._r.hset(redis_prefix + "live:agents", "1001", "{}")
                with pytest.raises(Exception, match=r"permission|NOPERM"):
                    await cli._r.xadd(redis_prefix + "bus:in:default", {"c": "{}"})
        assert engine.seen[0].actor == user
        assert audit[0].actor == user and audit[0].ok
        # A wrong password fails with a one-line error that does not show the password.
        bad_url = redis_url.replace("redis://", f"redis://{user}:wrong{password}@")
        async with RedisBus.connect(bad_url, redis_prefix) as cli:
            with pytest.raises(BusError) as info:
                await cli.request("status")
        assert password not in str(info.value) and "***" in str(info.value)
    finally:
        await redis_client.execute_command("ACL", "DELUSER", user)


async def test_local_bus_runs_the_same_protocol() -> None:
    live = MemoryLive()
    engine = FakeEngine(live)
    engine.publish_all()
    audit: list[AuditRecord] = []

    async def record(entry: AuditRecord) -> None:
        audit.append(entry)

    bus = LocalBus(actor="ravi", timeout=1.0)
    with pytest.raises(NoController):
        await bus.request("status")
    task = asyncio.create_task(serve(bus, engine.submit, audit=record))
    async with asyncio.timeout(2):
        await bus.ready.wait()
    reply = await bus.request("agent.pause", {"agent": "1002", "reason": "meeting"})
    assert reply.ok
    snap = await live.snapshot()
    assert snap.agents["1002"]["state"] == "PAUSED"
    engine.gate = asyncio.Event()
    with pytest.raises(BusTimeout):
        await bus.request("agent.unpause", {"agent": "1002"}, within=0.05)
    engine.gate.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert audit[0].actor == "ravi" and audit[0].command == "agent.pause"


async def test_failing_engine_becomes_a_failed_reply(redis_url: str, redis_prefix: str) -> None:
    class Broken(FakeEngine):
        async def submit(self, cmd: Command) -> Reply:
            raise RuntimeError("boom")

    audit: list[AuditRecord] = []
    async with controller(redis_url, redis_prefix, Broken, audit):
        async with RedisBus.connect(redis_url, redis_prefix) as cli:
            reply = await cli.request("status")
            second = await cli.request("status")
    assert not reply.ok and reply.code == "failed" and "boom" in reply.message
    assert second.code == "failed"  # the bus survived the first failure
    assert len(audit) == 2


_ids = st.sampled_from(["1", "2", "3"])
_rows = st.none() | st.fixed_dictionaries({"state": st.sampled_from(["READY", "PAUSED"])})
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("agent"), _ids, _rows),
        st.tuples(st.just("call"), _ids, _rows),
        st.tuples(st.just("counters"), _ids, st.fixed_dictionaries({"dials": st.integers(0, 9)})),
        st.tuples(st.just("flush"), st.just(""), st.none()),
        st.tuples(st.just("reset"), st.just(""), st.none()),
    ),
    max_size=25,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_ops)
def test_redis_live_matches_the_in_process_model(redis_url: str, ops: list[Any]) -> None:
    """Any sequence of publishes, flushes and resets reads back as the in-process model says."""

    async def run() -> tuple[Any, Any]:
        client = aioredis.from_url(redis_url, decode_responses=True)
        prefix = f"dialer-test:{secrets.token_hex(4)}:"
        model, live = MemoryLive(), RedisLive(client, prefix)
        try:
            for op, ident, data in ops:
                if op == "flush":
                    await live.flush()
                    continue
                for target in (model, live):
                    if op == "reset":
                        target.reset()
                    else:
                        getattr(target, op)(ident, data)
            await live.flush()
            got, want = await live.snapshot(), await model.snapshot()
        finally:
            keys = [k async for k in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        return got, want

    got, want = asyncio.run(run())
    for table in ("agents", "calls", "counters"):
        assert {k: dict(v) for k, v in getattr(got, table).items()} == {
            k: dict(v) for k, v in getattr(want, table).items()
        }, table
