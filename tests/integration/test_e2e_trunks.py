"""Trunk limits shared with inbound (issue 8), against the simulator's wire format.

An inbound caller on the carrier trunk (trace 26, as the simulator presents it) takes one of the
trunk's channels in the controller for as long as the call lasts; our own Originates through the
same trunk (demo: ``PJSIP/{number}@carrier``, trace 12) are never mistaken for inbound calls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.demo import Rig, RigSpec
from dialer.simpbx.model import plan_inbound

pytestmark = pytest.mark.slow


async def test_simulated_inbound_caller_holds_a_trunk_channel_until_hangup(
    tmp_path: Path,
) -> None:
    spec = RigSpec(
        agents=1,
        leads=1,
        phones=("1001",),
        speed=10.0,
        dial_mode="manual",  # nothing is dialled unless the agent asks
        agent_overrides={"login_spread": 0.5, "break_every": 0.0, "wrong_pin_share": 0.0},
    )
    r = Rig(spec, workdir=tmp_path)
    try:
        await r.start()
        e = r.engine
        gate = e.trunks["carrier"]
        # The link is up and the agent holds, so the caller's Newchannel is seen as it happens.
        await e.wait_for(lambda: e.ami_up and "1001" in e.agents, 30)
        plan = plan_inbound(r.sim.profile, r.sim.rng("test-inbound", 1))
        ch = r.sim.inbound_call("5551000", "9100000001", plan)
        # (wait_for checks after every input: a short call is caught while it is up)
        await e.wait_for(lambda: set(e.trunk_inbound.held) == {ch.uniqueid}, 20)
        r.sim.remote_hangup(ch, 16)
        await e.wait_for(lambda: gate.inbound == 0, 20)
        assert gate.in_use == 0 and not e.trunk_inbound.held
    finally:
        await r.close()
