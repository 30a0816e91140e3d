"""A scripted fake Asterisk for FastAGI server tests: connects, sends an environment, answers.

It plays the Asterisk side of a FastAGI session over loopback: it writes the ``agi_*``
environment (often the bytes of a recorded session), reads each command line the server
sends and answers with the bytes the test gives it.
"""

from __future__ import annotations

import asyncio

from tests.conftest import TRACES

EDGE_ENV = (TRACES / "22-fastagi-edge-cases.agi.s1.rx").read_bytes().split(b"\n\n", 1)[0] + b"\n\n"


def env_for(script: str, **more: str) -> bytes:
    """A minimal environment for ``agi_network_script`` = ``script``."""
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        "agi_channel: Local/7001@lab-carrier-00000001;1",
        "agi_uniqueid: cust-1",
        *(f"{k}: {v}" for k, v in more.items()),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class FakeAsterisk:
    """One FastAGI connection from "Asterisk" to the server under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = bytearray()

    @classmethod
    async def connect(cls, port: int, env: bytes | None = None) -> FakeAsterisk:
        """Connect and, if given, send the environment."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        fake = cls(reader, writer)
        if env is not None:
            writer.write(env)
            await writer.drain()
        return fake

    async def command(self, limit: float = 5.0) -> str:
        """The next command line from the server (without its newline)."""
        line = await asyncio.wait_for(self.reader.readline(), limit)
        if not line:
            raise EOFError("server closed the connection")
        self.received += line
        return line.decode().rstrip("\n")

    async def answer(self, data: bytes) -> None:
        """Send reply bytes (any number of lines, possibly partial)."""
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, line: str, reply: bytes) -> None:
        """Read one command, check it, answer it."""
        got = await self.command()
        assert got == line, f"expected {line!r}, got {got!r}"
        await self.answer(reply)

    async def closed_by_server(self, limit: float = 5.0) -> bool:
        """True once the server has closed the connection (EOF) within ``limit``."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), limit)
        except ConnectionResetError:
            return True  # closed with unread data: the kernel sends a reset
        self.received += rest
        return True

    def close(self) -> None:
        """Hang up the TCP connection from the Asterisk side."""
        self.writer.close()
