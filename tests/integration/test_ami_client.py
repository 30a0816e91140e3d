"""The AMI client against a scripted fake Asterisk on loopback (tests/integration/ami_fake.py)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from dialer.ami import (
    AmiActionError,
    AmiAuthError,
    AmiClient,
    AmiLinkLost,
    AmiNotConnected,
    AmiTimeout,
    Message,
)
from dialer.ami.client import backoff_delays
from dialer.config import AmiSettings
from dialer.protocol.ami import AmiDecoder, encode_headers, md5_key
from tests.conftest import TRACES
from tests.integration.ami_fake import FakeAmi, FakeConn

SECRET = "s3cret-pass"


def settings(port: int, **kw: object) -> AmiSettings:
    base: dict[str, object] = {
        "port": port,
        "secret": SECRET,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "action_timeout": 5.0,
        "connect_timeout": 2.0,
    }
    base.update(kw)
    return AmiSettings.model_validate(base)


class Links:
    """An on_connect hook that counts (re)connections and lets tests wait for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = asyncio.Condition()

    async def __call__(self, client: AmiClient) -> None:
        async with self._cond:
            self.count += 1
            self._cond.notify_all()

    async def wait(self, n: int, limit: float = 5.0) -> None:
        async with asyncio.timeout(limit):
            async with self._cond:
                await self._cond.wait_for(lambda: self.count >= n)


@asynccontextmanager
async def running(
    fake: FakeAmi, **kw: object
) -> AsyncIterator[tuple[AmiClient, Links, asyncio.Task[None]]]:
    port = await fake.start()
    links = Links()
    client = AmiClient(settings(port, **kw), on_connect=links)
    task = asyncio.create_task(client.run())
    try:
        yield client, links, task
    finally:
        await client.close()
        if not task.done():
            await asyncio.wait_for(task, 5)
        elif not task.cancelled():
            task.exception()
        await fake.close()


async def test_md5_login_then_an_action() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake) as (client, links, _):
        await client.wait_connected(5)
        await links.wait(1)
        assert client.connected
        [challenge] = fake.named("Challenge")
        assert challenge["AuthType"] == "md5"
        [login] = fake.named("Login")
        assert login["Key"] == md5_key("213370826", SECRET)
        assert login["AuthType"] == "md5" and "Secret" not in login
        assert login["Username"] == "dialer" and login["Events"] == "on"
        pong = await client.action("Ping")
        assert pong.ok and pong.response["Ping"] == "Pong" and pong.events == ()
        # Every action carries a fresh ActionID.
        ids = [a.action_id for a in fake.actions]
        assert None not in ids and len(set(ids)) == len(ids)


async def test_plain_login() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake, auth="plain") as (client, _, _):
        await client.wait_connected(5)
        [login] = fake.named("Login")
        assert login["Secret"] == SECRET and "Key" not in login
        assert not fake.named("Challenge")


@pytest.mark.parametrize("auth", ["md5", "plain"])
async def test_wrong_password_raises_out_of_run_without_a_retry(
    auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeAmi(secret="the-real-one")
    async with running(fake, auth=auth) as (client, links, task):
        with pytest.raises(AmiAuthError, match="Authentication failed"):
            await asyncio.wait_for(task, 5)
        with pytest.raises(AmiAuthError):
            await client.wait_connected(1)
        assert len(fake.conns) == 1 and links.count == 0
        assert not client.connected
        assert SECRET not in caplog.text


async def test_action_error_carries_the_message() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake) as (client, _, _):
        await client.wait_connected(5)
        with pytest.raises(AmiActionError) as err:
            await client.action("FooBarNoSuchAction")
        assert err.value.message.startswith("Invalid/unknown command: FooBarNoSuchAction")
        assert err.value.response.name == "Error" and not err.value.result.ok


def _trace_answer(trace: str, action_id: str) -> list[Message]:
    data = (TRACES / trace).read_bytes()
    frames = AmiDecoder().feed(data)
    return [f for f in frames if isinstance(f, Message) and f.action_id == action_id]


async def test_event_list_is_gathered_and_its_items_are_also_events() -> None:
    recorded = _trace_answer("07-coreshowchannels-live.ami", "csc-07")

    async def on_action(conn: FakeConn, action: Message) -> None:
        assert action.name == "CoreShowChannels"
        for msg in recorded:  # the recorded answer, with this action's id
            conn.send([(k, action.action_id if k == "ActionID" else v) for k, v in msg.headers])

    fake = FakeAmi(secret=SECRET, on_action=on_action)
    async with running(fake) as (client, _, _):
        items: list[Message] = []
        six = asyncio.Event()

        def on_item(msg: Message) -> None:
            items.append(msg)
            if len(items) == 6:
                six.set()

        client.subscribe(on_item, "coreshowchannel")
        await client.wait_connected(5)
        result = await client.action("CoreShowChannels")
        assert result.message == "Channels will follow"
        assert len(result.events) == 6
        assert all(e.is_event("CoreShowChannel") for e in result.events)
        assert result.complete is not None and result.complete["ListItems"] == "6"
        await asyncio.wait_for(six.wait(), 5)
        assert items == list(result.events)


async def test_originate_pending_when_the_link_drops_fails_and_is_never_resent() -> None:
    dropped = asyncio.Event()

    async def on_action(conn: FakeConn, action: Message) -> None:
        if action.name == "Originate":
            conn.close()  # the link dies before Asterisk answers
            dropped.set()

    fake = FakeAmi(secret=SECRET, on_action=on_action)
    async with running(fake) as (client, links, _):
        await links.wait(1)
        with pytest.raises(AmiLinkLost):
            await client.action("Originate", {"Channel": "Local/1001@lab-carrier", "Async": True})
        assert dropped.is_set()
        await links.wait(2)  # reconnected and logged in again
        await client.action("Ping")  # a full round trip on the new link
        assert len(fake.named("Originate")) == 1
        assert len(fake.conns) == 2


async def test_silent_server_is_declared_dead_by_the_watchdog() -> None:
    async def never(conn: FakeConn, action: Message) -> None:
        return None  # swallow everything: a hung Asterisk

    fake = FakeAmi(secret=SECRET, on_action=never, answer_pings=False)
    async with running(fake, ping_interval=0.05, dead_after=0.3, action_timeout=30.0) as (
        client,
        links,
        _,
    ):
        await links.wait(1)
        with pytest.raises(AmiLinkLost, match="watchdog"):
            await client.action("Status")  # fails when the link is declared dead, not at 30 s
        await links.wait(2)
        first = fake.conns[0]
        pings = [a for a in fake.actions if a.name == "Ping"]
        assert pings, "the watchdog pings an idle link"
        assert first.closed.is_set()


async def test_a_failing_subscriber_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake) as (client, links, _):
        got: list[str] = []
        done = asyncio.Event()

        def bad(msg: Message) -> None:
            raise RuntimeError("subscriber bug")

        async def good(msg: Message) -> None:
            got.append(msg["Uniqueid"])
            if len(got) == 3:
                done.set()

        client.subscribe(bad, "Hangup")
        client.subscribe(good, "HANGUP")
        await links.wait(1)
        conn = fake.conns[0]
        for i in range(3):
            conn.event("Hangup", ("Uniqueid", f"u{i}"), ("Cause", "16"))
        await asyncio.wait_for(done.wait(), 5)
        assert got == ["u0", "u1", "u2"]
        assert client.connected and len(fake.conns) == 1
        await client.action("Ping")
        assert "subscriber bug" in caplog.text


async def test_subscriptions_by_name_all_and_unsubscribe() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake) as (client, links, _):
        named: list[str] = []
        everything: list[str] = []
        marker = asyncio.Event()

        def on_all(msg: Message) -> None:
            everything.append(msg.name)
            if msg.name == "Marker":
                marker.set()

        stop = client.subscribe(lambda m: named.append(m.name), "newchannel", "Hangup")
        client.subscribe(on_all)
        await links.wait(1)
        conn = fake.conns[0]
        conn.event("Newchannel")
        conn.event("VarSet")
        conn.event("hangup")
        conn.event("Marker")
        await asyncio.wait_for(marker.wait(), 5)
        assert named == ["Newchannel", "hangup"]
        assert everything[-4:] == ["Newchannel", "VarSet", "hangup", "Marker"]
        stop()
        marker.clear()
        conn.event("Newchannel")
        conn.event("Marker")
        await asyncio.wait_for(marker.wait(), 5)
        assert named == ["Newchannel", "hangup"]


async def test_timeout_then_the_late_answer_is_ignored() -> None:
    parked: list[tuple[FakeConn, Message]] = []

    async def on_action(conn: FakeConn, action: Message) -> None:
        parked.append((conn, action))

    fake = FakeAmi(secret=SECRET, on_action=on_action)
    async with running(fake) as (client, _, _):
        await client.wait_connected(5)
        with pytest.raises(AmiTimeout):
            await client.action("Getvar", {"Variable": "X"}, timeout=0.1)
        conn, late = parked[0]
        conn.reply(late, "Success", ("Variable", "X"), ("Value", "late"))
        pong = await client.action("Ping")
        assert pong.response["Ping"] == "Pong"


async def test_not_connected_and_closed() -> None:
    client = AmiClient(settings(1))
    assert not client.connected
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")
    with pytest.raises(AmiTimeout):
        await client.wait_connected(0.05)


async def test_close_fails_pending_actions_and_ends_run() -> None:
    async def never(conn: FakeConn, action: Message) -> None:
        return None

    fake = FakeAmi(secret=SECRET, on_action=never)
    port = await fake.start()
    client = AmiClient(settings(port))
    task = asyncio.create_task(client.run())
    await client.wait_connected(5)
    pending = asyncio.create_task(client.action("Originate", {"Channel": "Local/1@x"}))
    await fake.wait_for(lambda: bool(fake.named("Originate")))
    await client.close()
    with pytest.raises(AmiLinkLost):
        await pending
    await asyncio.wait_for(task, 5)
    with pytest.raises(AmiNotConnected):
        await client.wait_connected(0.1)
    await fake.close()


async def test_cancelling_run_passes_through() -> None:
    fake = FakeAmi(secret=SECRET)
    port = await fake.start()
    client = AmiClient(settings(port))
    task = asyncio.create_task(client.run())
    await client.wait_connected(5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not client.connected
    await fake.close()


async def test_shutdown_event_then_reconnect_and_resync_hook() -> None:
    """Trace 27: Shutdown event, EOF; the client logs in again and on_connect runs again."""
    data = (TRACES / "27-shutdown-and-reconnect.ami").read_bytes()
    shutdown = data[data.index(b"Event: Shutdown") :]
    fake = FakeAmi(secret=SECRET)
    async with running(fake) as (client, links, _):
        seen = asyncio.Event()
        client.subscribe(lambda m: seen.set(), "Shutdown")
        await links.wait(1)
        fake.conns[0].send_raw(shutdown)
        fake.conns[0].close()
        await asyncio.wait_for(seen.wait(), 5)
        await links.wait(2)
        assert client.links == 2 and client.connected


async def test_on_connect_can_resynchronise_with_actions() -> None:
    fake = FakeAmi(secret=SECRET)
    port = await fake.start()
    answers: list[str] = []
    done = asyncio.Event()

    async def resync(client: AmiClient) -> None:
        answers.append((await client.action("Ping")).response["Ping"] or "")
        done.set()

    client = AmiClient(settings(port), on_connect=resync)
    task = asyncio.create_task(client.run())
    await asyncio.wait_for(done.wait(), 5)
    assert answers == ["Pong"]
    await client.close()
    await asyncio.wait_for(task, 5)
    await fake.close()


async def test_a_protocol_violation_drops_the_link_and_reconnects() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake, max_message_bytes=1024) as (_client, links, _):
        await links.wait(1)
        fake.conns[0].send([("Event", "Huge"), ("Data", "x" * 5000)])
        await links.wait(2)
        assert fake.conns[0].closed.is_set()


async def test_a_full_event_queue_applies_back_pressure_and_loses_nothing() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake, event_queue_size=10) as (client, links, _):
        release = asyncio.Event()
        got: list[str] = []
        all_in = asyncio.Event()

        async def slow(msg: Message) -> None:
            await release.wait()
            got.append(msg["N"] or "")
            if len(got) == 50:
                all_in.set()

        client.subscribe(slow, "Tick")
        await links.wait(1)
        for i in range(50):
            fake.conns[0].event("Tick", ("N", str(i)))
        await fake.conns[0].writer.drain()
        release.set()
        await asyncio.wait_for(all_in.wait(), 5)
        assert got == [str(i) for i in range(50)]


async def test_events_nobody_subscribed_to_are_not_queued_behind_a_slow_handler() -> None:
    fake = FakeAmi(secret=SECRET)
    async with running(fake, event_queue_size=10) as (client, links, _):
        release = asyncio.Event()
        got: list[str] = []
        both = asyncio.Event()

        async def slow(msg: Message) -> None:
            await release.wait()
            got.append(msg["N"] or "")
            if len(got) == 2:
                both.set()

        client.subscribe(slow, "Tick")
        await links.wait(1)
        fake.conns[0].event("Tick", ("N", "0"))  # the handler holds on to this one
        for i in range(200):  # a listing's worth of events no one takes
            fake.conns[0].event("CoreShowChannel", ("N", str(i)))
        fake.conns[0].event("Tick", ("N", "1"))
        # The reader is not stuck behind a full queue of unwanted events: actions still answer.
        result = await client.action("Ping", timeout=2.0)
        assert result.ok
        release.set()
        await asyncio.wait_for(both.wait(), 5)
        assert got == ["0", "1"]


async def test_refused_connects_back_off_then_connect() -> None:
    # Find a free port, keep nothing there: connects are refused until the fake starts.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    failures = asyncio.Event()
    count = 0

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            nonlocal count
            if "connect to" in record.getMessage():
                count += 1
                if count >= 2:
                    failures.set()

    spy = Spy()
    logging.getLogger("dialer.ami.client").addHandler(spy)
    links = Links()
    client = AmiClient(settings(port), on_connect=links)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(failures.wait(), 5)
        fake = FakeAmi(secret=SECRET)
        fake_server = await asyncio.start_server(fake._accept, "127.0.0.1", port)
        await links.wait(1)
        assert client.connected
        fake_server.close()
        await fake.close()
    finally:
        logging.getLogger("dialer.ami.client").removeHandler(spy)
        await client.close()
        await asyncio.wait_for(task, 5)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    delays = backoff_delays(0.5, 30.0, random.Random(7))
    got = [next(delays) for _ in range(12)]
    steps = [min(0.5 * 2**i, 30.0) for i in range(12)]
    assert all(s / 2 <= d <= s for d, s in zip(got, steps, strict=True))
    assert max(got) <= 30.0 and got[-1] >= 15.0
    other = backoff_delays(0.5, 30.0, random.Random(8))
    assert [next(other) for _ in range(12)] != got  # jitter differs between clients


async def test_actions_wire_bytes_are_what_asterisk_expects() -> None:
    fake = FakeAmi(secret=SECRET, on_action=_ok)
    async with running(fake) as (client, _, _):
        await client.wait_connected(5)
        await client.action(
            "Originate",
            [
                ("Channel", "Local/1001@lab-carrier"),
                ("Variable", ["CAMPAIGN=spring", "LEADID=4711"]),
            ],
        )
        [orig] = fake.named("Originate")
        assert orig.get_all("Variable") == ["CAMPAIGN=spring", "LEADID=4711"]
        assert encode_headers(orig.headers).endswith(b"\r\n\r\n")
        with pytest.raises(ValueError):
            await client.action("Hangup", {"Channel": "x\r\nAction: Logoff"})
        assert not fake.named("Hangup") and not fake.named("Logoff")


async def _ok(conn: FakeConn, action: Message) -> None:
    conn.reply(action, "Success", ("Message", "Originate successfully queued"))


async def test_a_caller_given_action_id_is_used_so_originate_response_matches() -> None:
    """Trace 17: a failed async Originate's OriginateResponse has Uniqueid <unknown>."""
    parked: list[tuple[FakeConn, Message]] = []

    async def on_action(conn: FakeConn, action: Message) -> None:
        parked.append((conn, action))
        conn.reply(action, "Success", ("Message", "Originate successfully queued"))
        conn.event(
            "OriginateResponse",
            ("ActionID", action.action_id or ""),
            ("Response", "Failure"),
            ("Channel", "FOO/bar"),
            ("Reason", "0"),
            ("Uniqueid", "<unknown>"),
        )

    fake = FakeAmi(secret=SECRET, on_action=on_action)
    async with running(fake) as (client, _, _):
        seen: list[Message] = []
        got = asyncio.Event()
        client.subscribe(lambda m: (seen.append(m), got.set()), "OriginateResponse")
        await client.wait_connected(5)
        result = await client.action(
            "Originate", {"actionid": "call-17", "Channel": "FOO/bar", "Async": True}
        )
        assert result.response.action_id == "call-17"
        [(_, sent)] = parked
        assert sent.get_all("ActionID") == ["call-17"]  # once, not twice
        await asyncio.wait_for(got.wait(), 5)
        assert seen[0].action_id == "call-17" and seen[0]["Uniqueid"] == "<unknown>"


@pytest.mark.parametrize("seed", range(8))
async def test_garbage_from_asterisk_never_kills_run(seed: int) -> None:
    """Random bytes on a logged-in link: the client survives, reconnects, and works again."""
    rng = random.Random(seed)
    pieces = [b"\r\n\r\n", b"Response: Success\r\n", b"Event: X\r\n", b"ActionID: ", b":", b"\n"]
    blob = b"".join(
        rng.choice(pieces) if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 300))
        for _ in range(rng.randint(1, 40))
    )
    fake = FakeAmi(secret=SECRET)
    async with running(fake, max_message_bytes=1024) as (client, links, task):
        await links.wait(1)
        fake.conns[0].send_raw(blob)
        fake.conns[0].close()
        await links.wait(2)
        assert not task.done()
        pong = await client.action("Ping")
        assert pong.response["Ping"] == "Pong"


async def test_a_slow_subscriber_is_not_mistaken_for_a_dead_link() -> None:
    """Back-pressure from a full event queue must not trip the watchdog."""
    fake = FakeAmi(secret=SECRET)
    async with running(fake, event_queue_size=10, ping_interval=0.05, dead_after=0.3) as (
        client,
        links,
        _,
    ):
        release = asyncio.Event()
        got: list[str] = []
        all_in = asyncio.Event()

        async def slow(msg: Message) -> None:
            await release.wait()
            got.append(msg["N"] or "")
            if len(got) == 40:
                all_in.set()

        client.subscribe(slow, "Tick")
        await links.wait(1)
        for i in range(40):
            fake.conns[0].event("Tick", ("N", str(i)))
        # Blocked for three times dead_after: no reconnect may happen meanwhile.
        with pytest.raises(TimeoutError):
            await links.wait(2, limit=1.0)
        release.set()
        await asyncio.wait_for(all_in.wait(), 5)
        assert got == [str(i) for i in range(40)]
        assert len(fake.conns) == 1 and client.connected
        await client.action("Ping")
