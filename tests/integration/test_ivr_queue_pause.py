"""``queue.pause`` / ``queue.resume`` (issue 9): new callers hear the closed message, waiters stay.

Same rig as test_ivr_engine.py: the real engine with fake ports, the IVR on a real FastAGI
server on loopback, driven by the scripted Asterisk peer.
"""

from __future__ import annotations

import asyncio

from dialer.engine.commands import Command
from tests.integration.fake_asterisk_ivr import FakeCaller
from tests.integration.test_ivr_engine import HINDI_CHAN, Rig, login, until
from tests.integration.test_ivr_engine import rig as rig


async def test_paused_queue_sends_new_callers_to_closed_and_keeps_waiters(rig: Rig) -> None:
    engine = rig.engine
    await login(engine, "1001", HINDI_CHAN, paused=True)
    first = FakeCaller(keys=["2", "0"], uniqueid="1795908192.201")
    first_call = asyncio.ensure_future(first.run(rig.server.port))
    await first.wait_for("EXEC StartMusicOnHold")
    await until(engine, lambda: len(engine.inbound.queue) == 1)

    paused = await engine.submit(Command("queue.pause", {"queue": "main"}))
    assert (paused.ok, paused.data["state"]) == (True, "paused")
    second = FakeCaller(keys=["2", "0"], uniqueid="1795908192.202")
    await asyncio.wait_for(second.run(rig.server.port), 10)
    assert second.count("EXEC StartMusicOnHold") == 0  # never queued
    assert len(engine.inbound.queue) == 1  # the first caller is still waiting
    rec2 = next(r for r in rig.recorder.calls if r.caller == second.caller and "closed" in r.path)
    assert rec2.agent is None

    resumed = await engine.submit(Command("queue.resume", {"queue": "main"}))
    assert (resumed.ok, resumed.data["state"]) == (True, "open")
    third = FakeCaller(keys=["2", "0"], uniqueid="1795908192.203")
    third_call = asyncio.ensure_future(third.run(rig.server.port))
    await third.wait_for("EXEC StartMusicOnHold")
    await until(engine, lambda: len(engine.inbound.queue) == 2)
    bad = await engine.submit(Command("queue.pause", {"queue": " "}))
    assert (bad.ok, bad.code) == (False, "unknown_queue")
    for caller, call in ((first, first_call), (third, third_call)):
        caller.hang_up_now()
        await asyncio.wait_for(call, 5)
