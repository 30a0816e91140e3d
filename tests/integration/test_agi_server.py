"""The FastAGI server against a scripted fake Asterisk on loopback."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from dialer.agi import (
    AgiCommandError,
    AgiDeadChannel,
    AgiHangup,
    AgiReply,
    AgiRouter,
    AgiServer,
    AgiSession,
    AgiTimeout,
)
from dialer.config import AgiSettings
from tests.integration.agi_fake import EDGE_ENV, FakeAsterisk, env_for

Handler = Callable[[AgiSession], Awaitable[None]]


@asynccontextmanager
async def serving(routes: dict[str, Handler], **kw: object) -> AsyncIterator[AgiServer]:
    router = AgiRouter()
    for path, handler in routes.items():
        router.add(path, handler)
    cfg: dict[str, object] = {"port": 0, "env_timeout": 2.0, "command_timeout": 5.0}
    cfg.update(kw)
    server = AgiServer(AgiSettings.model_validate(cfg), router)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class Outcome:
    """What a handler saw, and an event set when it finished (however it finished)."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.values: dict[str, object] = {}
        self.error: BaseException | None = None

    def wrap(self, body: Handler) -> Handler:
        async def handler(session: AgiSession) -> None:
            try:
                await body(session)
            except BaseException as exc:
                self.error = exc
                raise
            finally:
                self.done.set()

        return handler

    async def wait(self) -> None:
        await asyncio.wait_for(self.done.wait(), 5)


async def test_route_environment_params_and_replies_like_trace_22() -> None:
    out = Outcome()

    async def edge(s: AgiSession) -> None:
        out.values.update(path=s.path, params=dict(s.params), channel=s.channel, uid=s.uniqueid)
        out.values["noop"] = await s.command('NOOP "edge start"')
        with pytest.raises(AgiCommandError) as e510:
            await s.command("FOO BAR")
        out.values["510"] = (e510.value.code, e510.value.message)
        await s.set_variable("LABVAR", "hello world")
        out.values["labvar"] = await s.get_variable("LABVAR")
        out.values["nosuch"] = await s.get_variable("NOSUCHVAR")

    async with serving({"/edge": out.wrap(edge)}) as server:
        assert server.port > 0
        ast = await FakeAsterisk.connect(server.port, EDGE_ENV)
        await ast.expect('NOOP "edge start"', b"200 result=0\n")
        await ast.expect("FOO BAR", b"510 Invalid or unknown command\n")
        await ast.expect('SET VARIABLE LABVAR "hello world"', b"200 result=1\n")
        await ast.expect("GET VARIABLE LABVAR", b"200 result=1 (hello world)\n")
        await ast.expect("GET VARIABLE NOSUCHVAR", b"200 result=0\n")
        assert await ast.closed_by_server()  # handler returned -> we close, not Asterisk
        await out.wait()
    assert out.error is None
    assert out.values == {
        "path": "edge",
        "params": {"x": "1", "arg1": "arg1", "arg2": "arg2"},
        "channel": "Local/8001@lab-carrier-00000035;1",
        "uid": "agi-edge-1",
        "noop": AgiReply(200, "0"),
        "510": (510, "Invalid or unknown command"),
        "labvar": "hello world",
        "nosuch": None,
    }


async def test_multi_line_520_in_separate_reads_keeps_the_session_in_step() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        with pytest.raises(AgiCommandError) as err:
            await s.command("GET DATA")
        out.values["520"] = (err.value.code, err.value.usage)
        out.values["next"] = await s.command("CHANNEL STATUS")

    async with serving({"x": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        assert await ast.command() == "GET DATA"
        await ast.answer(b"520-Invalid command syntax.  Proper usage follows:\n")
        await ast.answer(b"Stream the given file, and receive DTMF data.\n")
        await ast.answer(b"Returns the digits received")
        await ast.answer(b" from the channel at the other end.\n520 End of proper")
        await ast.answer(b" usage.\n")
        await ast.expect("CHANNEL STATUS", b"200 result=6\n")
        await out.wait()
    assert out.error is None
    assert out.values["520"] == (
        520,
        (
            "Stream the given file, and receive DTMF data.",
            "Returns the digits received from the channel at the other end.",
        ),
    )
    assert out.values["next"] == AgiReply(200, "6")


async def test_hangup_line_in_the_middle_of_a_command() -> None:
    """Trace 18: HANGUP arrives before the reply of the pending command, then 511."""
    out = Outcome()

    async def h(s: AgiSession) -> None:
        out.values["before"] = s.hung_up
        out.values["bridge"] = await s.exec(
            "Bridge", "PJSIP/agent001-0000000b", "F(agent-wrapup^s^1)"
        )
        out.values["result"] = await s.get_variable("BRIDGERESULT")
        out.values["after"] = s.hung_up
        with pytest.raises(AgiDeadChannel) as dead:
            await s.stream_file("beep")
        out.values["511"] = dead.value.code
        await s.hangup()  # a dead channel is not an error for hangup()

    async with serving({"outbound/answered": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("outbound/answered?call=c1"))
        await ast.expect(
            "EXEC Bridge PJSIP/agent001-0000000b,F(agent-wrapup^s^1)", b"200 result=0\n"
        )
        assert await ast.command() == "GET VARIABLE BRIDGERESULT"
        await ast.answer(b"HANGUP\n")
        await ast.answer(b"200 result=1 (SUCCESS)\n")
        dead = b"511 Command Not Permitted on a dead channel or intercept routine\n"
        await ast.expect('STREAM FILE beep ""', dead)
        await ast.expect("HANGUP", dead)
        assert await ast.closed_by_server()
        await out.wait()
    assert out.error is None
    assert out.values == {
        "before": False,
        "bridge": AgiReply(200, "0"),
        "result": "SUCCESS",
        "after": True,
        "511": 511,
    }


async def test_unsolicited_hangup_while_idle_wakes_wait_hangup() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        out.values["hung"] = await s.wait_hangup(5)
        out.values["var"] = await s.get_variable("LABVAR")  # still allowed after HANGUP

    async with serving({"x": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        await ast.answer(b"HANGUP\n")
        await ast.expect("GET VARIABLE LABVAR", b"200 result=1 (hello world)\n")
        await out.wait()
    assert out.values == {"hung": True, "var": "hello world"}


async def test_end_of_stream_during_a_command_is_a_hangup() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        await s.stream_file("hello")

    async with serving({"x": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        assert await ast.command() == 'STREAM FILE hello ""'
        ast.close()
        await out.wait()
        await server.wait_idle(5)
    assert isinstance(out.error, AgiHangup)
    assert server.sessions_started == 1


async def test_peer_gone_during_the_environment_is_dropped_quietly() -> None:
    called = Outcome()

    async def h(s: AgiSession) -> None:
        await s.noop()

    async with serving({"x": called.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port)
        await ast.answer(b"agi_network: yes\nagi_network_scr")
        ast.close()
        await server.wait_idle(5)
        assert server.sessions_rejected == 1 and server.sessions_started == 0
        assert not called.done.is_set()
        # The server still serves others.
        ok = await FakeAsterisk.connect(server.port, env_for("x"))
        await ok.expect("NOOP", b"200 result=0\n")
        await called.wait()
    assert called.error is None


async def test_header_flood_is_cut_and_others_are_served() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        await s.answer()

    async with serving({"x": out.wrap(h)}, env_max_bytes=2048) as server:
        flood = await FakeAsterisk.connect(server.port)
        good = await FakeAsterisk.connect(server.port, env_for("x"))
        flood.writer.write(b"".join(f"agi_flood_{i}: {'x' * 40}\n".encode() for i in range(200)))
        assert await flood.closed_by_server()
        await good.expect("ANSWER", b"200 result=0\n")
        await out.wait()
        await server.wait_idle(5)
    assert server.sessions_rejected == 1 and server.sessions_started == 1


async def test_a_trickling_peer_times_out_without_blocking_others() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        await s.verbose("served while another peer trickles")

    async with serving({"x": out.wrap(h)}, env_timeout=1.0) as server:
        slow = await FakeAsterisk.connect(server.port)
        await slow.answer(b"agi_network: y")  # ... and never finishes
        fast = await FakeAsterisk.connect(server.port, env_for("x"))
        await fast.expect('VERBOSE "served while another peer trickles" 1', b"200 result=1\n")
        await out.wait()
        assert server.sessions_rejected == 0  # served while the trickler was still pending
        await slow.answer(b"es\nagi_x")
        assert await slow.closed_by_server(5)  # env_timeout cut it
        await server.wait_idle(5)
    assert server.sessions_rejected == 1


async def test_handler_error_closes_the_connection() -> None:
    async def broken(s: AgiSession) -> None:
        raise RuntimeError("handler bug")

    async with serving({"x": broken}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        assert await ast.closed_by_server()
        await server.wait_idle(5)


async def test_unknown_route_is_closed_without_commands() -> None:
    async with serving({}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("nowhere"))
        assert await ast.closed_by_server()
        assert ast.received == b""
        await server.wait_idle(5)
    assert server.sessions_rejected == 1


async def test_command_timeout_then_the_late_reply_is_dropped() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        with pytest.raises(AgiTimeout):
            await s.command("GET VARIABLE SLOW", timeout=0.1)
        out.values["next"] = await s.get_variable("FAST")

    async with serving({"x": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        assert await ast.command() == "GET VARIABLE SLOW"
        assert await ast.command() == "GET VARIABLE FAST"  # sent after the timeout
        await ast.answer(b"200 result=1 (slow)\n200 result=1 (fast)\n")
        await out.wait()
    assert out.values["next"] == "fast"


async def test_shutdown_cancels_handlers_and_closes_their_calls() -> None:
    out = Outcome()

    started = asyncio.Event()

    async def h(s: AgiSession) -> None:
        started.set()
        await s.wait_hangup()  # holds the call until the server goes away

    router = AgiRouter()
    router.add("x", out.wrap(h))
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    ast = await FakeAsterisk.connect(server.port, env_for("x"))
    await asyncio.wait_for(started.wait(), 5)
    await server.close()
    await out.wait()
    assert isinstance(out.error, asyncio.CancelledError)
    assert await ast.closed_by_server()
    assert server.active == 0


async def test_convenience_methods_wire_format() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        await s.answer()
        await s.noop("hi there")
        await s.verbose("agent agent001 logged in", 1)
        out.values["digits"] = await s.get_data("agent-user", 10000, 6)
        out.values["none"] = await s.get_data("beep", 500, 2)
        out.values["play"] = await s.stream_file("hello")
        out.values["exec"] = await s.exec("Playback", "beep")
        with pytest.raises(AgiHangup):
            await s.get_data("beep", 15000, 2)
        out.values["hung"] = s.hung_up

    async with serving({"agent/dialin": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("agent/dialin"))
        await ast.expect("ANSWER", b"200 result=0\n")
        await ast.expect('NOOP "hi there"', b"200 result=0\n")
        await ast.expect('VERBOSE "agent agent001 logged in" 1', b"200 result=1\n")
        await ast.expect("GET DATA agent-user 10000 6", b"200 result=1001\n")
        await ast.expect("GET DATA beep 500 2", b"200 result= (timeout)\n")
        await ast.expect('STREAM FILE hello ""', b"200 result=0 endpos=6291\n")
        await ast.expect("EXEC Playback beep", b"200 result=0\n")
        await ast.expect("GET DATA beep 15000 2", b"200 result=-1\n")
        await out.wait()
    assert out.values == {
        "digits": "1001",
        "none": "",
        "play": AgiReply(200, "0", None, 6291),
        "exec": AgiReply(200, "0"),
        "hung": True,
    }


def test_router_rules() -> None:
    router = AgiRouter()

    async def h(s: AgiSession) -> None:
        return None

    router.add("/agent/login/", h)
    assert router.resolve("agent/login") is h and router.resolve("/agent/login") is h
    assert router.resolve("agent") is None
    assert router.paths == ("agent/login",)
    with pytest.raises(ValueError):
        router.add("agent/login", h)


async def test_port_before_start_and_loopback_default() -> None:
    server = AgiServer(AgiSettings(port=0), AgiRouter())
    with pytest.raises(RuntimeError):
        _ = server.port
    assert AgiSettings().listen_host == "127.0.0.1"
    await server.start()
    task = asyncio.create_task(server.serve_forever())  # start() again is a no-op
    try:
        ast = await FakeAsterisk.connect(server.port, env_for("nothing"))
        assert await ast.closed_by_server()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert server.active == 0


async def test_exec_has_no_command_timeout_but_plain_commands_do() -> None:
    """EXEC Bridge lasts the whole call (trace 18): command_timeout must not cut it."""
    out = Outcome()
    noop_timed_out = asyncio.Event()
    bridge_seen = asyncio.Event()

    async def h(s: AgiSession) -> None:
        bridge = asyncio.create_task(s.exec("Bridge", "PJSIP/agent001-00000001"))
        await asyncio.wait_for(bridge_seen.wait(), 5)
        with pytest.raises(AgiTimeout):
            await s.command("NOOP")  # queued behind the bridge: times out at command_timeout
        noop_timed_out.set()
        out.values["bridge"] = await bridge  # still waiting, well past command_timeout
        reply = await s.command("GET VARIABLE BRIDGERESULT", timeout=5)
        out.values["next"] = reply.data

    async with serving({"x": out.wrap(h)}, command_timeout=0.2) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        assert await ast.command() == "EXEC Bridge PJSIP/agent001-00000001"
        bridge_seen.set()
        assert await ast.command() == "NOOP"
        await asyncio.wait_for(noop_timed_out.wait(), 5)
        await ast.answer(b"200 result=0\n200 result=0\n")  # the bridge ends; NOOP's late reply
        await ast.expect("GET VARIABLE BRIDGERESULT", b"200 result=1 (SUCCESS)\n")
        await out.wait()
    assert out.error is None
    assert out.values == {"bridge": AgiReply(200, "0"), "next": "SUCCESS"}


@pytest.mark.parametrize("seed", range(12))
async def test_garbage_from_asterisk_never_hangs_the_server(seed: int) -> None:
    """Random bytes after the environment: the session ends, the server closes, nothing hangs."""
    rng = random.Random(seed)
    pieces = [b"200 result=1 (x)\n", b"HANGUP\n", b"520-usage\n", b"\n", b"\r\n", b"510 no\n"]
    blob = b"".join(
        rng.choice(pieces) if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 40))
        for _ in range(rng.randint(1, 30))
    )
    out = Outcome()

    async def h(s: AgiSession) -> None:
        for _ in range(20):
            try:
                await s.command("NOOP", timeout=0.5)
            except (AgiCommandError, AgiTimeout):
                continue

    async with serving({"x": out.wrap(h)}, max_line_bytes=256) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        await ast.answer(blob)
        ast.writer.write_eof()  # Asterisk never does this; a broken peer might
        await asyncio.wait_for(out.done.wait(), 15)
        assert await ast.closed_by_server()
        await server.wait_idle(5)
    # Either every NOOP got some reply, or the session ended as a hang-up; nothing else.
    assert out.error is None or isinstance(out.error, AgiHangup)


async def test_a_reply_before_a_protocol_fault_still_answers_its_command() -> None:
    out = Outcome()

    async def h(s: AgiSession) -> None:
        first = asyncio.create_task(s.command("ANSWER"))
        second = asyncio.create_task(s.command("NOOP"))
        out.values["first"] = await first
        with pytest.raises(AgiHangup, match="protocol error"):
            await second

    async with serving({"x": out.wrap(h)}) as server:
        ast = await FakeAsterisk.connect(server.port, env_for("x"))
        assert await ast.command() == "ANSWER"
        assert await ast.command() == "NOOP"
        await ast.answer(b"200 result=0\nthis is not AGI\n")
        await out.wait()
        assert await ast.closed_by_server()
    assert out.error is None and out.values["first"] == AgiReply(200, "0")
