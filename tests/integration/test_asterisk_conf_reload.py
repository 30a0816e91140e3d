"""`dialer asterisk install` asks Asterisk to reload over AMI with the real AmiClient.

The far end is the loopback fake AMI server of the AMI client tests; it only accepts the
Reload if the write classes of the manager.conf that was just installed allow it (the
action -> class table of dialer.asterisk_conf.contract).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from dialer.asterisk_conf import commands, contract
from dialer.config import Settings
from dialer.protocol.ami import Message
from tests.integration.ami_fake import FakeAmi, FakeConn
from tests.unit.asterisk_conf_parse import parse_sections


def _settings(port: int, secret: str) -> Settings:
    return Settings.model_validate(
        {"ami": {"port": port, "secret": secret, "connect_timeout": 2.0, "action_timeout": 2.0}}
    )


async def test_install_reloads_over_ami(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    reloads: list[Message] = []

    async def on_action(conn: FakeConn, action: Message) -> None:
        manager = dict(parse_sections((etc / "manager.conf").read_text()))
        write = set(manager["dialer"]["write"][0].split(","))
        allowed = contract.AMI_ACTION_CLASSES.get(action.name, ("?",))
        if allowed and not write & set(allowed):
            conn.reply(action, "Error", ("Message", "Permission denied"))
            return
        reloads.append(action)
        conn.reply(action, "Success", ("Message", "Module Reloaded."))

    fake = FakeAmi(secret="reload-test-secret", on_action=on_action)
    port = await fake.start()
    try:
        outcome = await asyncio.to_thread(
            commands.install, _settings(port, "reload-test-secret"), tmp_path, etc, check=False
        )
    finally:
        await fake.close()
    assert outcome.code == 0, outcome.err
    assert [a.name for a in reloads] == ["Reload"]
    assert f"Asterisk reloaded over AMI (127.0.0.1:{port})" in outcome.out


async def test_refused_login_is_reported_and_exits_2(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    fake = FakeAmi(secret="the-real-secret")
    port = await fake.start()
    try:
        outcome = await asyncio.to_thread(
            commands.install, _settings(port, "a-wrong-secret"), tmp_path, etc, check=False
        )
    finally:
        await fake.close()
    assert outcome.code == 2
    assert "NOT reloaded" in outcome.err[-1]
    assert "refused" in outcome.err[-1]
    assert "a-wrong-secret" not in "\n".join(outcome.err + outcome.out)
    assert (etc / "manager.conf").exists()


def test_unreachable_ami_is_reported_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    etc = tmp_path / "etc"
    etc.mkdir()
    settings = Settings.model_validate(
        {"ami": {"port": port, "secret": "x-secret", "connect_timeout": 0.5}}
    )
    outcome = commands.install(settings, tmp_path, etc, check=False)
    assert outcome.code == 2
    assert f"AMI at 127.0.0.1:{port}" in outcome.err[-1]
    assert "core reload" in outcome.err[-1]
