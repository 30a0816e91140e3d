"""Property tests for the AMI codec: arbitrary bytes, arbitrary splits, round trips."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.protocol.ami import (
    ActionTracker,
    AmiDecoder,
    AmiProtocolError,
    Frame,
    Message,
    encode_action,
)

LIMIT = 512

# Bytes biased towards AMI's structure so that separators, colons and CRs show up often.
wireish = st.lists(
    st.one_of(
        st.sampled_from([b"\r\n", b"\n", b"\r", b":", b": ", b"Event", b"Response", b"\r\n\r\n"]),
        st.binary(max_size=40),
    ),
    max_size=60,
).map(b"".join)


def run(data: bytes, cuts: list[int], *, banner: bool) -> tuple[list[Frame], bool]:
    """Frames decoded (including those carried by the error) and whether it failed."""
    dec = AmiDecoder(expect_banner=banner, max_message_bytes=LIMIT)
    out: list[Frame] = []
    prev = 0
    try:
        for cut in [*sorted(set(cuts)), len(data)]:
            out += dec.feed(data[prev:cut])
            prev = cut
    except AmiProtocolError as exc:
        return out + list(exc.frames), True
    last = dec.close()
    if last is not None:
        out.append(last)
    return out, False


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=2000)
@given(data=st.one_of(wireish, st.binary(max_size=2000)), banner=st.booleans(), seed=st.data())
def test_any_bytes_any_split_same_result_and_only_the_protocol_error(
    data: bytes, banner: bool, seed: st.DataObject
) -> None:
    whole = run(data, [], banner=banner)
    cuts = seed.draw(st.lists(st.integers(0, len(data)), max_size=20))
    assert run(data, cuts, banner=banner) == whole
    if len(data) < 300:
        assert run(data, list(range(len(data))), banner=banner) == whole
    for frame in whole[0]:
        if isinstance(frame, Message):
            # Every lookup path works on whatever came in.
            _ = (frame.kind, frame.name, frame.action_id, frame.headers, frame.to_json())
            for key, _value in frame.headers:
                assert frame.get(key) is not None


key_text = st.text(
    st.characters(blacklist_characters=":\r\n", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=20,
)
value_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
)


@given(
    action=key_text,
    headers=st.lists(st.tuples(key_text, value_text), max_size=12),
    action_id=st.none() | value_text,
)
def test_encode_then_decode_gives_the_same_headers(
    action: str, headers: list[tuple[str, str]], action_id: str | None
) -> None:
    data = encode_action(action, headers, action_id)
    frames = AmiDecoder(expect_banner=False).feed(data)
    assert len(frames) == 1
    msg = frames[0]
    assert isinstance(msg, Message)
    expected = [("Action", action)]
    if action_id is not None:
        expected.append(("ActionID", action_id))
    expected += headers
    assert list(msg.headers) == expected
    assert msg.name == action
    for key, value in expected:
        assert msg.get(key) == next(v for k, v in expected if k.lower() == key.lower()) or (
            msg.get(key) == value
        )


@settings(max_examples=300, deadline=2000)
@given(data=wireish, probes=st.lists(st.text(max_size=8), max_size=5))
def test_lazy_lookups_equal_lookups_on_the_parsed_headers(data: bytes, probes: list[str]) -> None:
    try:
        frames = AmiDecoder(expect_banner=False, max_message_bytes=LIMIT).feed(data + b"\n\n")
    except AmiProtocolError:
        return
    for msg in frames:
        assert isinstance(msg, Message)
        eager = Message(msg.headers)
        for key in [*probes, *(k for k, _ in msg.headers), *(k.upper() for k, _ in msg.headers)]:
            assert msg.get(key) == eager.get(key)
            assert (key in msg) == (key in eager)
        assert (msg.kind, msg.name, msg.action_id) == (eager.kind, eager.name, eager.action_id)


def reference_headers(block: str) -> list[tuple[str, str]]:
    """The decoding policy, written the slow obvious way."""
    out = []
    for line in block.split("\n"):
        if ":" not in line:
            out.append(("", line))
            continue
        key, value = line.split(":", 1)
        out.append((key, value[1:] if value.startswith(" ") else value))
    return out


header_line = st.one_of(
    st.tuples(key_text, value_text).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1),
)


@given(lines=st.lists(header_line, min_size=1, max_size=10), crlf=st.booleans())
def test_header_splitting_follows_the_stated_policy(lines: list[str], crlf: bool) -> None:
    eol = "\r\n" if crlf else "\n"
    text = eol.join(lines) + eol + eol
    frames = AmiDecoder(expect_banner=False).feed(text.encode("utf-8"))
    assert len(frames) == 1 and isinstance(frames[0], Message)
    assert list(frames[0].headers) == reference_headers("\n".join(lines))


@st.composite
def interleaved_actions(draw: st.DrawFn) -> tuple[list[Message], dict[str, list[str]], set[str]]:
    """Several actions' answers, each in its own order, interleaved with unrelated events.

    Returns the messages, the expected list items per list action, and the plain actions.
    """
    n = draw(st.integers(1, 6))
    streams: list[list[Message]] = []
    lists: dict[str, list[str]] = {}
    plain: set[str] = set()
    for i in range(n):
        aid = f"act-{i}"
        if draw(st.booleans()):
            items = [f"{aid}-item{k}" for k in range(draw(st.integers(0, 4)))]
            lists[aid] = items
            stream = [Message((("Response", "Success"), ("ActionID", aid), ("EventList", "start")))]
            stream += [Message((("Event", "Item"), ("ActionID", aid), ("Tag", t))) for t in items]
            stream.append(
                Message(
                    (
                        ("Event", "ItemsComplete"),
                        ("ActionID", aid),
                        ("EventList", "Complete"),
                        ("ListItems", str(len(items))),
                    )
                )
            )
        else:
            plain.add(aid)
            status = draw(st.sampled_from(["Success", "Error"]))
            stream = [Message((("Response", status), ("ActionID", aid)))]
            if draw(st.booleans()):  # e.g. OriginateResponse after the Response
                stream.append(Message((("Event", "OriginateResponse"), ("ActionID", aid))))
        streams.append(stream)
    noise = draw(st.integers(0, 5))
    streams.append([Message((("Event", "Newexten"), ("Uniqueid", f"n{k}"))) for k in range(noise)])
    merged: list[Message] = []
    cursors = [0] * len(streams)
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        ready = [i for i, s in enumerate(streams) if cursors[i] < len(s)]
        pick = draw(st.sampled_from(ready))
        merged.append(streams[pick][cursors[pick]])
        cursors[pick] += 1
    return merged, lists, plain


@given(case=interleaved_actions())
def test_tracker_any_interleaving_gives_each_action_one_complete_result(
    case: tuple[list[Message], dict[str, list[str]], set[str]],
) -> None:
    messages, lists, plain = case
    tracker = ActionTracker()
    for aid in [*lists, *plain]:
        tracker.start(aid)
    results = {}
    for msg in messages:
        done = tracker.feed(msg)
        if done is not None:
            assert done.action_id not in results
            results[done.action_id] = done
    assert set(results) == set(lists) | plain
    assert len(tracker) == 0
    for aid, items in lists.items():
        assert [e["Tag"] for e in results[aid].events] == items
        assert results[aid].complete is not None
    for aid in plain:
        assert results[aid].events == () and results[aid].complete is None
