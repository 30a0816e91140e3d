"""Shutting the FastAGI server down while calls are still in a handler."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dialer.agi import AgiRouter, AgiServer, AgiSession
from dialer.config import AgiSettings

ENV = b"agi_network: yes\nagi_network_script: hold\nagi_channel: c;1\nagi_uniqueid: u1\n\n"


async def test_close_with_sessions_in_handlers_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered = asyncio.Event()

    async def hold(session: AgiSession) -> None:
        entered.set()
        await asyncio.Event().wait()  # like an EXEC Bridge that lasts the whole call

    router = AgiRouter()
    router.add("hold", hold)
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(ENV)
    await writer.drain()
    await asyncio.wait_for(entered.wait(), 5)
    with caplog.at_level(logging.WARNING):
        await server.close()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # we closed the call leg
        await asyncio.sleep(0)  # let asyncio run the connection task's done-callback
    writer.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
