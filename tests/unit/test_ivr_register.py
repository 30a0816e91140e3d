"""`dialer run` wiring of ivr/main: the flow file is validated before the controller serves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from dialer.agi.server import AgiRouter
from dialer.agi_scripts import ivr as ivr_script
from dialer.config import InboundSettings, Settings
from dialer.domain.ivr import FlowError


def test_a_bad_flow_file_stops_the_start_with_its_problems(tmp_path: Path) -> None:
    bad = tmp_path / "flows.toml"
    bad.write_text('[flows.f]\nstart = "x"\n[flows.f.nodes.x]\ntype = "menu"\n')
    settings = Settings(inbound=InboundSettings(flows_file=str(bad)))
    engine = SimpleNamespace(inbound=SimpleNamespace(skills_loader=None))
    router = AgiRouter()
    with pytest.raises(FlowError) as info:
        ivr_script.register(router, engine, settings, db=None, writer=None, owner="t")
    assert any("key 'choices': required for a menu node" in p for p in info.value.problems)
    assert router.paths == ()


def test_the_shipped_flow_is_served_by_default() -> None:
    settings = Settings(inbound=InboundSettings(text_to_speech=False))
    engine = SimpleNamespace(inbound=SimpleNamespace(skills_loader=None))
    router = AgiRouter()
    handler = ivr_script.register(router, engine, settings, db=None, writer=None, owner="t")
    assert router.resolve("/ivr/main/") is handler
    assert handler.tts is None and handler.flows.languages == ("hi", "en")
    assert engine.inbound.skills_loader is not None  # agent skills come from the database
