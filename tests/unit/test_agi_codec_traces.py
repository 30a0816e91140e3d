"""Every recorded FastAGI session decodes the same whole, byte by byte and in random pieces.

Per session: the environment names a route, every command in ``.tx`` gets exactly one reply,
``HANGUP`` lines are counted, and the facts ../shared/asterisk/README.md states are asserted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from dialer.protocol.agi import (
    AgiEnvReader,
    AgiErrorReply,
    AgiHangupNotice,
    AgiReply,
    AgiReplyDecoder,
    AgiRequest,
    ReplyItem,
    encode_command,
    parse_args,
)
from tests.conftest import TRACES

SESSIONS = sorted(TRACES.glob("*.agi.s*.rx")) if TRACES.is_dir() else []


@dataclass
class Session:
    rx_path: Path

    @cached_property
    def rx(self) -> bytes:
        return self.rx_path.read_bytes()

    @cached_property
    def tx_lines(self) -> list[str]:
        tx = self.rx_path.with_suffix(".tx").read_bytes().decode()
        assert tx == "" or tx.endswith("\n")
        return tx.splitlines()

    @cached_property
    def request_and_rest(self) -> tuple[AgiRequest, bytes]:
        got = AgiEnvReader().feed(self.rx)
        assert got is not None
        return got

    @cached_property
    def items(self) -> list[ReplyItem]:
        return AgiReplyDecoder().feed(self.request_and_rest[1])

    @property
    def replies(self) -> list[AgiReply | AgiErrorReply]:
        return [i for i in self.items if not isinstance(i, AgiHangupNotice)]

    def pairs(self) -> list[tuple[str, AgiReply | AgiErrorReply]]:
        return list(zip(self.tx_lines, self.replies, strict=True))


@pytest.fixture(params=SESSIONS, ids=[p.name for p in SESSIONS])
def session(request: pytest.FixtureRequest) -> Session:
    return Session(request.param)


def test_the_corpus_is_there() -> None:
    assert len(SESSIONS) >= 60


def test_split_anywhere_same_result(session: Session) -> None:
    data = session.rx
    rng = random.Random(session.rx_path.name)
    whole = (session.request_and_rest[0], session.items)
    for cuts in (list(range(1, len(data))), sorted(rng.sample(range(1, len(data)), 8))):
        env = AgiEnvReader()
        dec = AgiReplyDecoder()
        req = None
        items: list[ReplyItem] = []
        prev = 0
        for cut in [*cuts, len(data)]:
            chunk = data[prev:cut]
            prev = cut
            if req is None:
                got = env.feed(chunk)
                if got is None:
                    continue
                req, chunk = got
            items += dec.feed(chunk)
        assert (req, items) == whole
        assert dec.pending == 0


def test_every_command_gets_one_reply_and_the_route_is_known(session: Session) -> None:
    req, _ = session.request_and_rest
    assert req.path in {
        "outbound/answered",
        "outbound/info",
        "agent/login",
        "agent/pause",
        "agent/unpause",
        "agent/wrapup",
        "agent/logout",
        "agent/dialin",
        "edge",
        "ivr/main",
    }
    assert req.env["agi_network"] == "yes"
    assert req.env["agi_request"].startswith("agi://127.0.0.1:4573/")
    assert len(session.replies) == len(session.tx_lines)
    hangups = session.rx.count(b"HANGUP\n")
    assert sum(isinstance(i, AgiHangupNotice) for i in session.items) == hangups
    # Every command the capture server sent is what our encoder produces for its words.
    for line in session.tx_lines:
        words = parse_args(line)
        assert parse_args(encode_command(*words).decode().rstrip("\n")) == words


def _by_name(stem: str) -> list[Session]:
    return [Session(p) for p in SESSIONS if p.name.startswith(stem + ".agi.")]


def test_trace_22_reply_forms() -> None:
    [s] = _by_name("22-fastagi-edge-cases")
    got = {line: reply for line, reply in s.pairs()}
    assert got['NOOP "edge start"'] == AgiReply(200, "0")
    assert got["FOO BAR"] == AgiErrorReply(510, "Invalid or unknown command")
    usage = got["GET DATA"]
    assert isinstance(usage, AgiErrorReply) and usage.code == 520
    assert usage.message == "Invalid command syntax.  Proper usage follows:"
    assert usage.usage[-1] == "Returns the digits received from the channel at the other end."
    assert got["GET VARIABLE NOSUCHVAR"] == AgiReply(200, "0")
    assert got['GET FULL VARIABLE "${CALLERID(num)}/${LABVAR}"'] == AgiReply(
        200, "1", "5550000/hello world"
    )
    assert got["EXEC NoSuchApplication foo"].result == "-2"  # type: ignore[union-attr]
    assert got["CHANNEL STATUS"] == AgiReply(200, "6")
    assert got["GET DATA beep 8000 4"] == AgiReply(200, "123")
    dead = AgiErrorReply(511, "Command Not Permitted on a dead channel or intercept routine")
    assert got['STREAM FILE beep ""'] == dead and got["ANSWER"] == dead
    # HANGUP came while nothing was pending, between GET DATA's reply and the next command.
    kinds = [type(i).__name__ for i in s.items]
    at = kinds.index("AgiHangupNotice")
    assert s.items[at - 1] == AgiReply(200, "123")
    assert s.items[at + 1] == AgiReply(200, "1", "hello world")  # GET VARIABLE still works


def test_trace_18_hangup_precedes_the_reply_then_511() -> None:
    customer = [
        s
        for s in _by_name("18-handoff-agi-exec-bridge")
        if s.request_and_rest[0].path == "outbound/answered"
    ]
    [s] = customer
    assert dict(s.request_and_rest[0].params)["call"]
    names = [type(i).__name__ for i in s.items]
    assert names[-3:] == ["AgiHangupNotice", "AgiReply", "AgiErrorReply"]
    assert s.items[-2] == AgiReply(200, "1", "SUCCESS")
    assert isinstance(s.items[-1], AgiErrorReply) and s.items[-1].code == 511
    exec_reply = dict(s.pairs())["EXEC Bridge PJSIP/agent001-0000000b,F(agent-wrapup^s^1)"]
    assert exec_reply == AgiReply(200, "0")


def test_trace_26_stream_file_endpos_and_get_data() -> None:
    [s] = _by_name("26-inbound-sip-fastagi-ivr-dtmf")
    req = s.request_and_rest[0]
    assert req.path == "ivr/main" and req.params["did"] == "5551000"
    got = dict(s.pairs())
    assert got['STREAM FILE hello ""'] == AgiReply(200, "0", None, 6291)
    assert got["GET DATA beep 8000 3"] == AgiReply(200, "123")
    assert got["HANGUP"] == AgiReply(200, "1")
    assert isinstance(s.items[-1], AgiHangupNotice)  # after our HANGUP, nothing pending


def test_trace_31_bridge_to_a_gone_agent() -> None:
    [s] = [
        x
        for x in _by_name("31-exec-bridge-agent-gone")
        if x.request_and_rest[0].path == "outbound/answered"
    ]
    replies = dict(s.pairs())
    assert replies["GET VARIABLE BRIDGERESULT"] == AgiReply(200, "1", "NONEXISTENT")
    assert replies["EXEC Playback tt-allbusy"] == AgiReply(200, "-1")
    assert isinstance(replies["HANGUP"], AgiErrorReply) and replies["HANGUP"].code == 511


def test_trace_11_environment_and_variables() -> None:
    [s] = _by_name("11-originate-async-channelid-agi")
    req = s.request_and_rest[0]
    assert req.uniqueid == "dialer-11-0001-a" and req.params["lead"] == "4711"
    replies = dict(s.pairs())
    assert replies["GET VARIABLE CAMPAIGN"] == AgiReply(200, "1", "spring")


def test_trace_33_notsure_and_28_wrapup_digits() -> None:
    statuses = [dict(s.pairs()).get("GET VARIABLE AMDSTATUS") for s in _by_name("33-amd-notsure")]
    assert statuses == [AgiReply(200, "1", "NOTSURE")] * 3
    wrapups = [
        s
        for s in _by_name("28-hold-loop-dtmf-bridge-wrapup")
        if s.request_and_rest[0].path == "agent/wrapup"
    ]
    assert dict(wrapups[0].pairs())["GET DATA beep 15000 2"] == AgiReply(200, "3")
    timeouts = [
        r
        for s in _by_name("28-latency-hold-loop")
        for r in s.replies
        if isinstance(r, AgiReply) and r.data == "timeout"
    ]
    assert timeouts and all(r.result == "" and r.result_int is None for r in timeouts)


def test_trace_34_dialin_login_digits() -> None:
    [s] = [
        x
        for x in _by_name("34-softphone-dialin-login")
        if x.request_and_rest[0].path == "agent/dialin"
    ]
    got = dict(s.pairs())
    assert got["GET DATA agent-user 10000 6"] == AgiReply(200, "1001")
    assert got["GET DATA agent-pass 10000 6"] == AgiReply(200, "4321")
    assert "." in s.request_and_rest[0].uniqueid  # inbound: a normal Uniqueid
