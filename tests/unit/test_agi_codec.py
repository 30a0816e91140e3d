"""The FastAGI codec: environment, routing data, command quoting, every reply form."""

from __future__ import annotations

import pytest

from dialer.protocol.agi import (
    AgiEnvReader,
    AgiErrorReply,
    AgiHangupNotice,
    AgiProtocolError,
    AgiReply,
    AgiReplyDecoder,
    encode_command,
    encode_line,
    make_request,
    parse_args,
    parse_env,
    parse_reply_line,
    quote_arg,
    split_script,
)
from tests.conftest import TRACES

EDGE_RX = TRACES / "22-fastagi-edge-cases.agi.s1.rx"


def env_of(rx: bytes) -> tuple[bytes, bytes]:
    cut = rx.index(b"\n\n") + 2
    return rx[:cut], rx[cut:]


# --------------------------------------------------------------------------- environment


def test_trace_22_environment_route_and_params() -> None:
    env_bytes, _ = env_of(EDGE_RX.read_bytes())
    got = AgiEnvReader().feed(env_bytes)
    assert got is not None
    req, rest = got
    assert rest == b""
    assert req.env["agi_network_script"] == "edge?x=1"
    assert req.env["agi_request"] == "agi://127.0.0.1:4573/edge?x=1"
    assert req.env["agi_accountcode"] == ""  # an empty value is a value
    assert req.path == "edge"
    assert dict(req.params) == {"x": "1", "arg1": "arg1", "arg2": "arg2"}
    assert req.args == ("arg1", "arg2")
    assert req.channel == "Local/8001@lab-carrier-00000035;1"
    assert req.uniqueid == "agi-edge-1"
    with pytest.raises(TypeError):
        req.env["x"] = "y"  # type: ignore[index]


def test_environment_byte_by_byte_and_with_crlf() -> None:
    env_bytes, _ = env_of(EDGE_RX.read_bytes())
    reader = AgiEnvReader()
    got = None
    for i in range(len(env_bytes)):
        got = reader.feed(env_bytes[i : i + 1])
        if got is not None:
            assert i == len(env_bytes) - 1
    assert got is not None
    whole = AgiEnvReader().feed(env_bytes)
    assert whole is not None and got[0] == whole[0]
    crlf = AgiEnvReader().feed(env_bytes.replace(b"\n", b"\r\n") + b"200 result=0\r\n")
    assert crlf is not None
    assert crlf[0].env == whole[0].env and crlf[1] == b"200 result=0\r\n"
    with pytest.raises(AgiProtocolError):
        reader.feed(b"more")


def test_environment_limit_and_empty_environment() -> None:
    reader = AgiEnvReader(max_bytes=1024)
    with pytest.raises(AgiProtocolError, match="exceeds 1024"):
        for _ in range(100):
            reader.feed(b"agi_flood: " + b"x" * 40 + b"\n")
    with pytest.raises(AgiProtocolError):
        reader.feed(b"\n")  # refused for good
    empty = AgiEnvReader().feed(b"\n")
    assert empty is not None and dict(empty[0].env) == {} and empty[0].path == ""


def test_parse_env_is_lenient_with_odd_lines() -> None:
    env = parse_env(b"agi_a: 1\nnonsense\n: novalue\nagi_a: 2\nagi_b:x\n")
    assert env == {"agi_a": "1", "agi_b": "x"}


@pytest.mark.parametrize(
    ("script", "path", "params"),
    [
        ("outbound/answered?call=call-11", "outbound/answered", {"call": "call-11"}),
        ("/agent/login?agent=agent001", "agent/login", {"agent": "agent001"}),
        ("ivr/main?did=5551000&x=&y=a%20b", "ivr/main", {"did": "5551000", "x": "", "y": "a b"}),
        ("ivr/main?did=+15551001", "ivr/main", {"did": "+15551001"}),  # raw ${EXTEN}
        ("agent/dialin", "agent/dialin", {}),
        ("", "", {}),
    ],
)
def test_split_script(script: str, path: str, params: dict[str, str]) -> None:
    assert split_script(script) == (path, params)


def test_args_win_over_query_names() -> None:
    req = make_request({"agi_network_script": "x?arg1=q", "agi_arg_1": "a", "agi_arg_3": "c"})
    assert dict(req.params) == {"arg1": "a"}  # numbering stops at the first gap
    assert req.channel == "" and req.uniqueid == ""


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("arg", "wire"),
    [
        ("beep", "beep"),
        ("", '""'),
        ("hello world", '"hello world"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        (
            "PJSIP/agent001-0000000f,F(agent-wrapup^s^1)",
            "PJSIP/agent001-0000000f,F(agent-wrapup^s^1)",
        ),
        ("tab\there", '"tab\there"'),
    ],
)
def test_quote_arg(arg: str, wire: str) -> None:
    assert quote_arg(arg) == wire
    assert parse_args(wire) == [arg]


def test_encode_command_like_the_traces() -> None:
    assert encode_command("STREAM FILE", "beep", "") == b'STREAM FILE beep ""\n'
    assert encode_command("SET VARIABLE", "LABVAR", "hello world") == (
        b'SET VARIABLE LABVAR "hello world"\n'
    )
    assert encode_command("VERBOSE", "agent agent001 logged in", "1") == (
        b'VERBOSE "agent agent001 logged in" 1\n'
    )
    assert encode_line("ANSWER") == b"ANSWER\n"
    for bad in ("a\nb", "a\rb"):
        with pytest.raises(ValueError):
            quote_arg(bad)
        with pytest.raises(ValueError):
            encode_line(bad)
        with pytest.raises(ValueError):
            encode_command(bad)


def test_parse_args_like_asterisk() -> None:
    assert parse_args('GET FULL VARIABLE "${CALLERID(num)}/${LABVAR}"') == [
        "GET",
        "FULL",
        "VARIABLE",
        "${CALLERID(num)}/${LABVAR}",
    ]
    assert parse_args('  a  "b c"\t"" d\\ e') == ["a", "b c", "", "d e"]


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("200 result=0", AgiReply(200, "0")),
        ("200 result=1 (hello world)", AgiReply(200, "1", "hello world")),
        ("200 result= (timeout)", AgiReply(200, "", "timeout")),
        ("200 result=0 endpos=6920", AgiReply(200, "0", None, 6920)),
        ("200 result=1 (x) endpos=-1", AgiReply(200, "1", "x", -1)),
        ("200 result=1 (a|b (c)|)", AgiReply(200, "1", "a|b (c)|")),
        ("200 result=-2", AgiReply(200, "-2")),
        ("510 Invalid or unknown command", AgiErrorReply(510, "Invalid or unknown command")),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            AgiErrorReply(511, "Command Not Permitted on a dead channel or intercept routine"),
        ),
        ("503", AgiErrorReply(503, "")),
    ],
)
def test_reply_lines(line: str, reply: AgiReply | AgiErrorReply) -> None:
    assert parse_reply_line(line) == reply


def test_result_int() -> None:
    assert AgiReply(200, "-1").result_int == -1
    assert AgiReply(200, "").result_int is None


@pytest.mark.parametrize("line", ["hello", "20 result=1", "200result=1", "200 nope", "abc def"])
def test_not_replies(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply_line(line)


def test_multi_line_520_in_pieces_with_hangup_around() -> None:
    wire = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        b"Returns the digits received from the channel at the other end.\n"
        b"520 End of proper usage.\nHANGUP\n200 result=1 (SUCCESS)\n"
    )
    expected = [
        AgiErrorReply(
            520,
            "Invalid command syntax.  Proper usage follows:",
            (
                "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
                "Returns the digits received from the channel at the other end.",
            ),
        ),
        AgiHangupNotice(),
        AgiReply(200, "1", "SUCCESS"),
    ]
    assert AgiReplyDecoder().feed(wire) == expected
    dec = AgiReplyDecoder()
    got = []
    for i in range(len(wire)):
        got += dec.feed(wire[i : i + 1])
        if i < wire.index(b"520 End"):
            assert got == []  # nothing until the usage text is complete
    assert got == expected
    assert dec.pending == 0


def test_crlf_and_blank_lines_are_tolerated() -> None:
    assert AgiReplyDecoder().feed(b"200 result=0\r\n\r\nHANGUP\r\n") == [
        AgiReply(200, "0"),
        AgiHangupNotice(),
    ]


def test_reply_limits_and_garbage() -> None:
    dec = AgiReplyDecoder(max_line_bytes=256)
    with pytest.raises(AgiProtocolError) as err:
        dec.feed(b"200 result=0\n" + b"2" * 300)
    assert err.value.items == (AgiReply(200, "0"),)
    with pytest.raises(AgiProtocolError):
        dec.feed(b"200 result=0\n")
    with pytest.raises(AgiProtocolError):
        AgiReplyDecoder().feed(b"HTTP/1.1 200 OK\n")
    flood = AgiReplyDecoder()
    with pytest.raises(AgiProtocolError, match="too many"):
        flood.feed(b"520-x\n" + b"usage\n" * 2000)


def test_end_of_stream_is_a_hangup_and_keeps_what_arrived() -> None:
    dec = AgiReplyDecoder()
    assert dec.feed(b"200 result=0\n200 result=1 (x)") == [AgiReply(200, "0")]
    assert dec.eof() == [AgiReply(200, "1", "x"), AgiHangupNotice()]
    with pytest.raises(AgiProtocolError):
        dec.feed(b"200 result=0\n")
    cut = AgiReplyDecoder()
    assert cut.feed(b"520-Invalid command syntax.  Proper usage follows:\nline one\n") == []
    assert cut.eof() == [
        AgiErrorReply(520, "Invalid command syntax.  Proper usage follows:", ("line one",)),
        AgiHangupNotice(),
    ]
    junk = AgiReplyDecoder()
    junk.feed(b"200 result=5\nnot agi")
    assert junk.eof() == [AgiHangupNotice()]
    assert AgiReplyDecoder().eof() == [AgiHangupNotice()]
