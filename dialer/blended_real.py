"""The blended run for real: the controller against the simulator, inbound callers + a campaign.

``dialer bench blended --real`` builds the embedded world of :mod:`dialer.demo` (a database with
one predictive campaign, 35 simulated agents on the simulator, the real controller over AMI and
FastAGI on one scaled clock), lets the simulator's inbound callers dial the DID at the given
rate (a share of them press 0 for a person), runs for the given simulated minutes, and prints
the outbound abandonment rate and the inbound figures from the ledger and from the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

FLOWS = """
languages = ["hi", "en"]
[prompts.hi]
p = "hello"
[prompts.en]
p = "hello"
[dids.default]
flow = "main"
[flows.main]
start = "menu"
[flows.main.nodes.menu]
type = "menu"
prompt = "p"
choices = { "0" = "queue", "1" = "survey" }
retries = 1
on_failure = "queue"
[flows.main.nodes.survey]
type = "survey"
prompt = "p"
question = "q1"
choices = { "1" = "yes", "2" = "no" }
next = "bye"
on_failure = "bye"
[flows.main.nodes.queue]
type = "queue"
prompt = "p"
on_timeout = "bye"
[flows.main.nodes.bye]
type = "hangup"
result = "done"
"""


async def run_real(
    minutes: float, speed: float, arrivals: float, person_share: float, db_url: str, seed: int
) -> list[str]:
    """Run the world for ``minutes`` simulated minutes; return the report lines."""
    from sqlalchemy import select

    from dialer.config import InboundSettings
    from dialer.db.models import Call
    from dialer.demo import Rig, RigSpec
    from dialer.reports.inbound import InboundRow, inbound_figures
    from dialer.simpbx.profile import load_profile

    class BlendRig(Rig):
        def _settings(self, site: Any) -> Any:
            settings = super()._settings(site)
            flows = Path(self.workdir) / "flows.toml"
            flows.write_text(FLOWS)
            inbound = InboundSettings(flows_file=str(flows), text_to_speech=False)
            return settings.model_copy(update={"inbound": inbound})

    prof = load_profile()
    inbound = dataclasses.replace(
        prof.inbound,
        arrivals_per_hour=arrivals,
        choices={"0": person_share, "1": 1.0 - person_share},
        patience=dataclasses.replace(prof.inbound.patience, median=120.0),
    )
    spec = RigSpec(
        agents=35,
        leads=20000,
        speed=speed,
        seed=seed,
        db_url=db_url,
        profile=dataclasses.replace(prof, inbound=inbound),
        agent_overrides={"login_spread": 0.0, "break_every": 0.0, "wrong_pin_share": 0.0},
    )
    started = time.monotonic()
    async with BlendRig(spec) as rig:
        await asyncio.sleep(minutes * 60.0 / speed)
        queue = rig.engine.inbound.figures()
        await rig.stop_controller()
        async with rig.db.sessionmaker() as s:
            calls = list((await s.scalars(select(Call))).all())
    out = [c for c in calls if c.direction == "outbound"]
    inn = [c for c in calls if c.direction == "inbound"]
    live = sum(1 for c in out if c.result in ("human", "abandoned"))
    abandoned = sum(1 for c in out if c.result == "abandoned")
    f = inbound_figures([InboundRow(c.did, c.result or "", c.wait_seconds) for c in inn], 20.0)
    return [
        f"real blended run: controller + simulator, 35 agents, predictive campaign, "
        f"{minutes:g} simulated min at x{speed:g} ({time.monotonic() - started:.0f} s real), "
        f"inbound {arrivals:g}/h ({person_share:.0%} ask for a person), seed {seed}",
        f"outbound: {len(out)} originates, {live} live, {abandoned} abandoned = "
        f"{abandoned / live if live else 0.0:.2%} of live (cap 3%)",
        f"inbound (ledger): {f['calls']} calls {f['results']}; queue offered {f['offered']}, "
        f"answered {f['answered']}, abandoned {f['abandoned']}, left {f['left']}, "
        f"SL {f['service_level']:.1%}, wait avg {f['average_wait']:.1f} s p90 "
        f"{f['p90_wait']:.1f} s",
        f"inbound (engine): offered {queue['offered']}, answered {queue['answered']}, "
        f"abandoned {queue['abandoned']}, SL {queue['service_level']:.1%}, wait avg "
        f"{queue['average_wait']:.1f} s p90 {queue['p90_wait']:.1f} s",
        "calls still up when the run stopped end as failed (shutdown); a single hour has about "
        "±0.5 points of noise on the abandonment rate",
    ]
