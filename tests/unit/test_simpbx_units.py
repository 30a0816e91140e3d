"""Simulator pieces without sockets: the FastAGI peer codec, profiles, draws and the clock."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.simpbx import agi_peer
from dialer.simpbx.clock import SimClock
from dialer.simpbx.dialplan import parse_bridge_options
from dialer.simpbx.model import draw, pick, plan_call
from dialer.simpbx.profile import Dist, ProfileError, load_profile, profile_from_dict

# --------------------------------------------------------------------------- FastAGI peer


def quote(arg: str) -> str:
    """How a FastAGI client quotes one argument (backslash-escape quotes and backslashes)."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\n\r\x00"), max_size=12),
        min_size=1,
        max_size=6,
    )
)
def test_split_args_undoes_quoting(args: list[str]) -> None:
    line = " ".join(quote(a) for a in args)
    assert agi_peer.split_args(line) == args


def test_split_args_like_asterisk() -> None:
    assert agi_peer.split_args('SET VARIABLE LABVAR "hello world"') == [
        "SET",
        "VARIABLE",
        "LABVAR",
        "hello world",
    ]
    assert agi_peer.split_args('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert agi_peer.split_args("  NOOP   x ") == ["NOOP", "x"]


def test_match_command_prefers_the_longest_name() -> None:
    assert agi_peer.match_command(["GET", "FULL", "VARIABLE", "x"]) == ("GET FULL VARIABLE", ["x"])
    assert agi_peer.match_command(["get", "variable", "X"]) == ("GET VARIABLE", ["X"])
    assert agi_peer.match_command(["FOO", "BAR"]) is None
    assert agi_peer.match_command(["EXEC", "Bridge", "a,b"]) == ("EXEC", ["Bridge", "a,b"])


def test_agi_url_keeps_the_query_and_splits_arguments() -> None:
    """[22] agi_network_script keeps ?x=1; AGI() arguments become agi_arg_N."""
    url = agi_peer.parse_agi_url("agi://127.0.0.1:4573/edge?x=1,arg1,arg2")
    assert (url.host, url.port, url.script) == ("127.0.0.1", 4573, "edge?x=1")
    assert url.request == "agi://127.0.0.1:4573/edge?x=1" and url.args == ("arg1", "arg2")
    assert agi_peer.parse_agi_url("agi://localhost/outbound/answered").port == 4573


def test_env_block_order_and_end() -> None:
    data = agi_peer.encode_env({"network": "yes", "channel": "PJSIP/x-1"}, ("a",))
    lines = data.decode().split("\n")
    assert lines[0] == "agi_network: yes" and lines[3] == "agi_channel: PJSIP/x-1"
    assert [ln.split(":")[0] for ln in lines[:22]] == [f"agi_{k}" for k in agi_peer.ENV_ORDER]
    assert lines[22] == "agi_arg_1: a" and data.endswith(b"\n\n")


def test_usage_520_is_the_recorded_text() -> None:
    """[22] GET DATA without arguments."""
    assert agi_peer.usage_520("GET DATA") == (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        b"Returns the digits received from the channel at the other end.\n"
        b"520 End of proper usage.\n"
    )


def test_bridge_options() -> None:
    assert parse_bridge_options("hF(dialer-agent-wrapup^s^1)") == (
        ("dialer-agent-wrapup", "s", 1),
        True,
    )
    assert parse_bridge_options("F(agent-loop^s^1)") == (("agent-loop", "s", 1), False)
    assert parse_bridge_options("") == (None, False)
    assert parse_bridge_options("F(x^y^nope)h") == (None, True)


# --------------------------------------------------------------------------- profile


def test_default_profile_documents_the_lab_pins() -> None:
    prof = load_profile()
    assert [prof.pin_for(n).outcome for n in ("1001", "2001", "3001", "4001", "5001")] == [  # type: ignore[union-attr]
        "human",
        "busy",
        "noanswer",
        "congestion",
        "machine",
    ]
    assert prof.pin_for("9198765432") is None
    assert prof.asterisk.trunks == {"carrier": "dialer-inbound"}


def test_profile_overlay_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[called]\nparty_hangs_up = 0.25\ntalk = { median = 30.0 }\n"
        '[[pin]]\npattern = "^9"\noutcome = "busy"\n'
    )
    prof = load_profile(path)
    assert prof.called.party_hangs_up == 0.25 and prof.called.talk == Dist(30.0)
    assert prof.called.ring == load_profile().called.ring  # untouched keys keep defaults
    assert len(prof.pins) == 1 and prof.pin_for("900") is not None
    with pytest.raises(ProfileError, match=r"called\.nope: unknown setting"):
        profile_from_dict({"called": {"nope": 1}})
    with pytest.raises(ProfileError, match="unknown section"):
        profile_from_dict({"caled": {}})
    with pytest.raises(ProfileError, match="outcome"):
        profile_from_dict({"pin": [{"pattern": "1", "outcome": "maybe"}]})
    with pytest.raises(ProfileError, match="bad regex"):
        profile_from_dict({"pin": [{"pattern": "(", "outcome": "busy"}]})
    with pytest.raises(ProfileError, match="weights"):
        profile_from_dict({"called": {"outcome_weights": {"human": 0}}})
    with pytest.raises(ProfileError, match="not valid TOML"):
        bad = tmp_path / "bad.toml"
        bad.write_text("[called\n")
        load_profile(bad)


# --------------------------------------------------------------------------- draws


@given(st.floats(0.1, 100), st.floats(0, 2), st.floats(0, 10), st.floats(10, 50), st.integers())
def test_draw_stays_within_bounds(
    median: float, sigma: float, low: float, high: float, seed: int
) -> None:
    value = draw(Dist(median, sigma, low, high), random.Random(seed))
    assert low <= value <= high


def test_lognormal_median_and_pick_shares() -> None:
    rng = random.Random(1)
    values = [draw(Dist(45.0, 0.8, 0.0, 1e9), rng) for _ in range(20000)]
    assert statistics.median(values) == pytest.approx(45.0, rel=0.05)
    picks = [pick({"a": 3.0, "b": 1.0, "c": 0.0}, rng) for _ in range(20000)]
    assert picks.count("a") / len(picks) == pytest.approx(0.75, abs=0.02)
    assert "c" not in picks


def test_plans_are_repeatable_and_follow_the_weights() -> None:
    prof = load_profile()
    a = [plan_call(prof, f"98{i:08d}", random.Random(f"7:{i}"), {"1": 1.0}) for i in range(4000)]
    b = [plan_call(prof, f"98{i:08d}", random.Random(f"7:{i}"), {"1": 1.0}) for i in range(4000)]
    assert a == b
    share = sum(p.outcome == "busy" for p in a) / len(a)
    weights = prof.called.outcome_weights
    assert share == pytest.approx(weights["busy"] / sum(weights.values()), abs=0.02)
    human = [p for p in a if p.outcome == "human"]
    assert {p.amd_status for p in human} >= {"HUMAN", "NOTSURE", "MACHINE"}
    notsure = [p for p in human if p.amd_status == "NOTSURE"]
    assert all(p.amd_time == 5.0 and p.amd_cause == "TOOLONG-5000" for p in notsure)
    assert all(2.2 <= p.amd_time <= 3.0 for p in human if p.amd_status == "HUMAN")


def test_pins_fix_the_outcome_and_the_verdict() -> None:
    prof = load_profile()
    for i in range(50):
        p = plan_call(prof, "5001", random.Random(i), {})
        assert (p.outcome, p.amd_status, p.ring) == ("machine", "MACHINE", 2.0)


def test_bimodal_talk() -> None:
    import dataclasses

    prof = load_profile()
    called = dataclasses.replace(
        prof.called, talk_short_share=0.5, talk=Dist(100.0), talk_short=Dist(5.0)
    )
    prof = dataclasses.replace(prof, called=called, pins=())
    talks = {plan_call(prof, str(i), random.Random(i), {}).talk for i in range(400)}
    assert talks == {5.0, 100.0}


# --------------------------------------------------------------------------- clock


async def test_clock_scales_an_injected_time_source() -> None:
    now = [100.0]
    clock = SimClock(30.0, source=lambda: now[0], epoch=lambda: 1_000_000.0)
    assert clock.now() == 0.0
    now[0] += 2.0
    assert clock.now() == pytest.approx(60.0)
    assert clock.epoch() == pytest.approx(1_000_060.0)
    assert clock.real(60.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        SimClock(0)


@given(
    st.text(alphabet=st.characters(blacklist_characters='"<>\r\n\x00'), min_size=1, max_size=20),
    st.text(alphabet="0123456789+", min_size=1, max_size=15),
)
def test_callerid_parsing(name: str, num: str) -> None:
    from dialer.simpbx.pbx import parse_callerid

    assert parse_callerid(f'"{name}" <{num}>') == (name, num)
    assert parse_callerid(num) == ("<unknown>", num)
    assert parse_callerid("") == ("<unknown>", "<unknown>")
