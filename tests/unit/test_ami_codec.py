"""The AMI codec: framing, decoding policy, limits, encoding and action tracking."""

from __future__ import annotations

import io
import pickle

import pytest

from dialer.protocol.ami import (
    ActionTracker,
    AmiDecoder,
    AmiProtocolError,
    Banner,
    Message,
    decode_bytes,
    decode_capture,
    display,
    encode_action,
    encode_banner,
    encode_headers,
    encode_message,
    md5_key,
    next_action_id,
)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def msgs(data: bytes, **kw: int) -> list[Message]:
    return [f for f in decode_bytes(data, **kw) if isinstance(f, Message)]


# --------------------------------------------------------------------------- framing


def test_banner_is_one_line_and_the_first_message_follows_at_once() -> None:
    frames = decode_bytes(BANNER + b"Response: Success\r\nActionID: a\r\n\r\n")
    assert frames[0] == Banner("Asterisk Call Manager/11.0.0")
    assert isinstance(frames[1], Message)
    assert frames[1].kind == "response" and frames[1].name == "Success"
    assert Banner("garbage").version == ""


def test_banner_split_across_reads() -> None:
    dec = AmiDecoder()
    assert dec.feed(b"Asterisk Call") == []
    assert dec.pending == len(b"Asterisk Call")
    assert dec.feed(b" Manager/11.0.0\r") == []
    out = dec.feed(b"\nEvent: X\r\n\r\n")
    assert out == [Banner("Asterisk Call Manager/11.0.0"), Message((("Event", "X"),))]


def test_bare_lf_and_mixed_line_ends_give_the_same_messages() -> None:
    crlf = BANNER + b"Event: A\r\nK: 1\r\n\r\nEvent: B\r\n\r\n"
    lf = BANNER + b"Event: A\nK: 1\n\nEvent: B\n\n"
    mixed = BANNER + b"Event: A\r\nK: 1\n\r\nEvent: B\n\n"
    assert msgs(crlf) == msgs(lf) == msgs(mixed)
    assert [m.name for m in msgs(crlf)] == ["A", "B"]


def test_extra_blank_lines_between_messages_are_skipped() -> None:
    data = BANNER + b"\r\n\r\nEvent: A\r\n\r\n\r\n\r\n\r\nEvent: B\r\n\r\n"
    assert [m.name for m in msgs(data)] == ["A", "B"]


def test_a_cr_not_before_lf_is_data() -> None:
    [m] = msgs(BANNER + b"Event: A\r\nK: x\ry\r\n\r\n")
    assert m["K"] == "x\ry"


def test_keys_case_insensitive_repeated_keys_in_order_verbatim_values() -> None:
    data = (
        BANNER + b"Response: Success\r\nActionID: x1\r\nOutput: one\r\noutput: two\r\n"
        b"OUTPUT:three\r\nValue:   spaced  \r\nEmpty: \r\nBare\r\n\r\n"
    )
    [m] = msgs(data)
    assert m.action_id == "x1" and m["actionid"] == "x1" and m.get("ACTIONID") == "x1"
    assert m.get_all("Output") == ["one", "two", "three"]
    assert m["Output"] == "one"  # the first value wins for single lookups
    assert m["Value"] == "  spaced  "  # one space is the separator, the rest is data
    assert m["Empty"] == ""
    assert ("", "Bare") in m.headers  # a line without colon is kept, not dropped
    assert "output" in m and "nope" not in m and 3 not in m
    with pytest.raises(KeyError):
        m["nope"]


def test_lazy_and_eager_lookups_agree_including_non_ascii() -> None:
    data = BANNER + "Event: Ünï\r\nCallerIDName: Ravi Kumār\r\nActionID: é1\r\n\r\n".encode()
    [lazy] = msgs(data)
    eager = Message(lazy.headers)
    for key in ("event", "CALLERIDNAME", "actionid", "missing"):
        assert lazy.get(key) == eager.get(key)
    assert lazy.name == "Ünï" and lazy.kind == "event"
    assert lazy == eager and hash(lazy) == hash(eager)


def test_kind_and_name() -> None:
    assert Message((("Event", "Hangup"),)).kind == "event"
    assert Message((("response", "Error"),)).kind == "response"
    assert Message((("Action", "Ping"),)).kind == "action"
    assert Message((("Foo", "bar"),)).kind == "unknown"
    assert Message(()).kind == "unknown" and Message(()).name == ""
    assert Message((("Event", "Hangup"),)).is_event("HANGUP")
    assert not Message((("Response", "Hangup"),)).is_event("Hangup")


def test_message_is_immutable_and_pickles() -> None:
    [m] = msgs(BANNER + b"Event: A\r\nK: v\r\n\r\n")
    with pytest.raises(AttributeError):
        m.headers = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.name = "B"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.anything = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(m)) == m
    assert "Event" in repr(m)


def test_invalid_utf8_is_kept_and_shown_escaped() -> None:
    raw = BANNER + b"Event: A\r\nCallerIDName: caf\xe9 \xff\r\n\r\n"
    [m] = msgs(raw)
    assert display(m["CallerIDName"]) == "caf\\xe9 \\xff"
    assert encode_message(m) == raw[len(BANNER) :]  # the exact bytes come back
    assert m.to_json() == {
        "type": "event",
        "name": "A",
        "headers": [["Event", "A"], ["CallerIDName", "caf\\xe9 \\xff"]],
    }


def test_close_returns_a_message_cut_mid_way() -> None:
    dec = AmiDecoder()
    assert len(dec.feed(BANNER + b"Event: A\r\n\r\nEvent: B\r\nK: v\r\n")) == 2
    last = dec.close()
    assert last == Message((("Event", "B"), ("K", "v")))
    with pytest.raises(AmiProtocolError):
        dec.feed(b"more")
    assert AmiDecoder().close() is None
    dec2 = AmiDecoder()
    dec2.feed(BANNER + b"\r\n")
    assert dec2.close() is None


# --------------------------------------------------------------------------- limits


def test_a_message_over_the_limit_raises_with_the_frames_before_it() -> None:
    big = b"Event: Big\r\nData: " + b"x" * 2000 + b"\r\n\r\n"
    data = BANNER + b"Event: A\r\n\r\n" + big + b"Event: C\r\n\r\n"
    with pytest.raises(AmiProtocolError) as whole:
        AmiDecoder(max_message_bytes=1024).feed(data)
    assert [getattr(f, "name", None) for f in whole.value.frames][1:] == ["A"]
    # The same answer when the bytes trickle in.
    dec = AmiDecoder(max_message_bytes=1024)
    seen: list[object] = []
    with pytest.raises(AmiProtocolError) as split:
        for i in range(len(data)):
            seen += dec.feed(data[i : i + 1])
    seen += split.value.frames
    assert seen == list(whole.value.frames)
    with pytest.raises(AmiProtocolError):
        dec.feed(b"Event: D\r\n\r\n")  # unusable after the fault


def test_an_endless_message_is_refused_before_it_is_complete() -> None:
    dec = AmiDecoder(max_message_bytes=1024)
    dec.feed(BANNER)
    with pytest.raises(AmiProtocolError, match="exceeds 1024"):
        for _ in range(100):
            dec.feed(b"Key: " + b"y" * 50 + b"\r\n")
    assert dec.pending == 0  # the buffer was released


def test_an_endless_banner_is_refused() -> None:
    with pytest.raises(AmiProtocolError):
        AmiDecoder(max_message_bytes=1024).feed(b"A" * 2000)


def test_exactly_at_the_limit_is_fine() -> None:
    body = b"Event: A\r\nK: " + b"z" * 100
    assert len(msgs(BANNER + body + b"\r\n\r\n", max_message_bytes=len(body) + 1)) == 1


# --------------------------------------------------------------------------- encoding


def test_encode_action_wire_format_like_the_traces() -> None:
    data = encode_action(
        "Originate",
        {
            "Channel": "Local/1001@lab-carrier",
            "Async": True,
            "Timeout": 30000,
            "Variable": {"CAMPAIGN": "spring", "LEADID": 4711},
            "Account": None,
        },
        action_id="orig-11",
    )
    assert data == (
        b"Action: Originate\r\nActionID: orig-11\r\nChannel: Local/1001@lab-carrier\r\n"
        b"Async: true\r\nTimeout: 30000\r\nVariable: CAMPAIGN=spring\r\nVariable: LEADID=4711\r\n"
        b"\r\n"
    )
    pairs = encode_action("Setvar", [("Variable", ["A=1", "B=2"]), ("Value", "")])
    assert pairs == b"Action: Setvar\r\nVariable: A=1\r\nVariable: B=2\r\nValue: \r\n\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        {"Channel": "x\r\nAction: Hangup"},
        {"Channel": "x\ny"},
        {"Bad: key": "v"},
        {"": "v"},
        {"Key\r": "v"},
    ],
)
def test_encode_refuses_header_injection(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        encode_action("Ping", headers)


def test_encode_round_trip_through_the_decoder() -> None:
    data = encode_action("Command", {"Command": "core show channels", "X": " lead"}, "c1")
    [m] = AmiDecoder(expect_banner=False).feed(data)
    assert isinstance(m, Message)
    assert m.kind == "action" and m.name == "Command" and m.action_id == "c1"
    assert m["X"] == " lead"
    assert encode_message(m) == data
    assert encode_headers(m.headers) == data


def test_banner_and_ids() -> None:
    assert encode_banner() == BANNER
    assert next_action_id("p") != next_action_id("p")


def test_md5_key_matches_trace_03() -> None:
    assert md5_key("213370826", "dialerpass") == "dbc29616b3b08a251817e8c58e15187f"


def test_decode_capture_reads_server_and_client_captures() -> None:
    server = list(decode_capture(io.BytesIO(BANNER + b"Event: A\r\n\r\nEvent: B\r\n")))
    assert [o["type"] for o in server] == ["banner", "event", "event"]
    client = list(decode_capture(io.BytesIO(b"Action: Ping\r\nActionID: 1\r\n\r\n")))
    assert client == [
        {"type": "action", "name": "Ping", "headers": [["Action", "Ping"], ["ActionID", "1"]]}
    ]


# --------------------------------------------------------------------------- tracking


def ev(name: str, **headers: str) -> Message:
    return Message((("Event", name), *headers.items()))


def resp(status: str, **headers: str) -> Message:
    return Message((("Response", status), *headers.items()))


def test_tracker_plain_action() -> None:
    t = ActionTracker()
    t.start("a1")
    assert "a1" in t and len(t) == 1
    assert t.feed(ev("Newchannel")) is None
    done = t.feed(resp("Success", ActionID="a1", Message="Originate successfully queued"))
    assert done is not None and done.action_id == "a1" and done.events == ()
    assert done.complete is None and len(t) == 0
    # The OriginateResponse that follows is only an event now.
    assert t.feed(ev("OriginateResponse", ActionID="a1")) is None


def test_tracker_gathers_an_event_list_amid_other_traffic() -> None:
    t = ActionTracker()
    t.start("csc")
    t.start("ping")
    assert t.feed(resp("Success", ActionID="csc", EventList="start")) is None
    assert t.feed(ev("CoreShowChannel", ActionID="csc", Channel="A")) is None
    assert t.feed(ev("Newexten", Channel="Z")) is None
    ping = t.feed(resp("Success", ActionID="ping", Ping="Pong"))
    assert ping is not None and ping.action_id == "ping"
    assert t.feed(ev("CoreShowChannel", ActionID="csc", Channel="B")) is None
    done = t.feed(
        ev("CoreShowChannelsComplete", ActionID="csc", EventList="Complete", ListItems="2")
    )
    assert done is not None
    assert [e["Channel"] for e in done.events] == ["A", "B"]
    assert done.complete is not None and done.complete["ListItems"] == "2"
    assert len(t) == 0


def test_tracker_list_error_ends_at_once_and_name_fallback() -> None:
    t = ActionTracker()
    t.start("s")
    done = t.feed(resp("Error", ActionID="s", Message="No such channel"))
    assert done is not None and done.response.name == "Error"
    t.start("old")
    t.feed(resp("Success", ActionID="old", EventList="start"))
    done2 = t.feed(ev("FooComplete", ActionID="old"))
    assert done2 is not None and done2.complete is not None


def test_tracker_ignores_unknown_forgotten_and_duplicate() -> None:
    t = ActionTracker()
    assert t.feed(resp("Success", ActionID="nobody")) is None
    t.start("x")
    with pytest.raises(ValueError):
        t.start("x")
    t.forget("x")
    assert t.feed(resp("Success", ActionID="x")) is None
    t.start("y")
    t.start("z")
    t.feed(resp("Success", ActionID="z", EventList="start"))
    assert t.feed(resp("Success", ActionID="z")) is None  # second response for a list
    assert t.clear() == ["y", "z"]
    assert len(t) == 0
    t.start("e")
    assert t.feed(ev("Early", ActionID="e")) is None  # event before its list response
    assert t.feed(Message((("Action", "Ping"), ("ActionID", "e")))) is None
