"""Every recorded FastAGI session, replayed against the real server over loopback.

The fake Asterisk sends the recorded environment and, for each command, the recorded reply
bytes (HANGUP lines where they were).  A handler sends the recorded commands through
``AgiSession.command``.  The server must write exactly the recorded command bytes, the handler
must get each recorded reply (or the matching typed exception), see the hang-up when Asterisk
said HANGUP, and the server must be the one that closes the connection.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialer.agi import AgiCommandError, AgiDeadChannel, AgiRouter, AgiServer, AgiSession
from dialer.config import AgiSettings
from dialer.protocol.agi import AgiErrorReply, AgiHangupNotice, AgiReply, AgiReplyDecoder
from tests.conftest import TRACES
from tests.integration.agi_fake import FakeAsterisk

SESSIONS = sorted(TRACES.glob("*.agi.s*.rx")) if TRACES.is_dir() else []


def reply_units(after_env: bytes) -> tuple[list[bytes], bytes]:
    """Group reply bytes per command (HANGUP lines go with the next reply); the rest."""
    units: list[bytes] = []
    pending = b""
    in_usage = False
    for line in after_env.splitlines(keepends=True):
        pending += line
        text = line.rstrip(b"\r\n")
        if text == b"HANGUP":
            continue
        if text.startswith(b"520-"):
            in_usage = True
            continue
        if in_usage and not text.startswith(b"520 "):
            continue
        in_usage = False
        units.append(pending)
        pending = b""
    return units, pending


@pytest.fixture(params=SESSIONS, ids=[p.name for p in SESSIONS])
def recorded(request: pytest.FixtureRequest) -> tuple[bytes, bytes]:
    """(bytes from Asterisk, bytes to Asterisk) of one recorded session."""
    rx_path: Path = request.param
    return rx_path.read_bytes(), rx_path.with_suffix(".tx").read_bytes()


async def test_recorded_session_replays_through_the_server(recorded: tuple[bytes, bytes]) -> None:
    rx, tx = recorded
    env, after = rx.split(b"\n\n", 1)
    units, trailing = reply_units(after)
    commands = tx.decode().splitlines()
    assert len(units) == len(commands)
    expected = [i for i in AgiReplyDecoder().feed(after) if not isinstance(i, AgiHangupNotice)]
    saw_hangup = b"HANGUP\n" in after

    outcomes: list[object] = []
    finished = asyncio.Event()
    flags: dict[str, bool] = {}

    async def replay(session: AgiSession) -> None:
        try:
            for line in commands:
                try:
                    outcomes.append(await session.command(line))
                except AgiCommandError as exc:
                    outcomes.append(exc)
            if saw_hangup:
                flags["hung_up"] = await session.wait_hangup(5)
        finally:
            finished.set()

    script = env.split(b"agi_network_script: ", 1)[1].split(b"\n", 1)[0].decode()
    router = AgiRouter()
    router.add(script.split("?", 1)[0], replay)
    server = AgiServer(AgiSettings(port=0), router)
    await server.start()
    try:
        ast = await FakeAsterisk.connect(server.port, env + b"\n\n")
        for line, unit in zip(commands, units, strict=True):
            assert await ast.command() == line
            await ast.answer(unit)
        await ast.answer(trailing)
        await asyncio.wait_for(finished.wait(), 5)
        assert await ast.closed_by_server()
        await server.wait_idle(5)
    finally:
        await server.close()

    assert bytes(ast.received) == tx  # byte for byte what our capture server sent
    assert len(outcomes) == len(expected)
    for got, want in zip(outcomes, expected, strict=True):
        if isinstance(want, AgiReply):
            assert got == want
        else:
            assert isinstance(want, AgiErrorReply)
            assert isinstance(got, AgiCommandError)
            assert (got.code, got.message, got.usage) == (want.code, want.message, want.usage)
            assert isinstance(got, AgiDeadChannel) == (want.code == 511)
    assert flags.get("hung_up", False) == saw_hangup
