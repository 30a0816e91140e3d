"""Against a real Asterisk, when one is given: DIALER_TEST_AMI=host:port (plus _USER, _SECRET).

Not run in CI (there is no Asterisk there); the recorded traces stand in for it.  Run it on the
lab PBX after an Asterisk upgrade to see that the client still speaks its AMI.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from dialer.ami import AmiActionError, AmiClient
from dialer.config import AmiSettings

TARGET = os.environ.get("DIALER_TEST_AMI", "")

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.skipif(not TARGET, reason="set DIALER_TEST_AMI=host:port to test a real Asterisk"),
]


async def test_login_ping_list_action_and_error_on_a_real_asterisk() -> None:
    host, _, port = TARGET.rpartition(":")
    settings = AmiSettings(
        host=host or "127.0.0.1",
        port=int(port),
        username=os.environ.get("DIALER_TEST_AMI_USER", "dialer"),
        secret=os.environ.get("DIALER_TEST_AMI_SECRET", ""),
        auth="md5",
    )
    client = AmiClient(settings)
    task = asyncio.create_task(client.run())
    try:
        await client.wait_connected(10)
        pong = await client.action("Ping")
        assert pong.response["Ping"] == "Pong"
        listing = await client.action("CoreShowChannels")
        assert listing.complete is not None
        assert int(listing.complete["ListItems"] or "-1") == len(listing.events)
        with pytest.raises(AmiActionError, match="Invalid/unknown command"):
            await client.action("FooBarNoSuchAction")
    finally:
        await client.close()
        await asyncio.wait_for(task, 10)
