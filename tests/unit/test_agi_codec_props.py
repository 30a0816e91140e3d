"""Property tests for the FastAGI codec: arbitrary bytes and splits, quoting round trip."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.protocol.agi import (
    AgiEnvReader,
    AgiProtocolError,
    AgiReplyDecoder,
    encode_command,
    parse_args,
    quote_arg,
)

LIMIT = 256

agiish = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"\n",
                b"\r\n",
                b"200 result=",
                b"1",
                b" (",
                b")",
                b" endpos=",
                b"HANGUP\n",
                b"520-",
                b"520 End of proper usage.\n",
                b"510 x\n",
                b"511 y\n",
                b"agi_x: ",
            ]
        ),
        st.binary(max_size=30),
    ),
    max_size=50,
).map(b"".join)


def replies(data: bytes, cuts: list[int]) -> tuple[list[object], bool]:
    dec = AgiReplyDecoder(max_line_bytes=LIMIT)
    out: list[object] = []
    prev = 0
    try:
        for cut in [*sorted(set(cuts)), len(data)]:
            out += dec.feed(data[prev:cut])
            prev = cut
    except AgiProtocolError as exc:
        return out + list(exc.items), True
    return out + list(dec.eof()), False


@settings(max_examples=400, deadline=2000)
@given(data=st.one_of(agiish, st.binary(max_size=1500)), draw=st.data())
def test_reply_decoder_any_bytes_any_split(data: bytes, draw: st.DataObject) -> None:
    whole = replies(data, [])
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=20))
    assert replies(data, cuts) == whole
    if len(data) < 200:
        assert replies(data, list(range(len(data)))) == whole


def env(data: bytes, cuts: list[int]) -> object:
    reader = AgiEnvReader(max_bytes=1024)
    prev = 0
    try:
        for cut in [*sorted(set(cuts)), len(data)]:
            got = reader.feed(data[prev:cut])
            if got is not None:
                return got[0], got[1] + data[cut:]
            prev = cut
    except AgiProtocolError:
        return "refused"
    return "incomplete"


@settings(max_examples=300, deadline=2000)
@given(data=st.one_of(agiish, st.binary(max_size=2000)), draw=st.data())
def test_env_reader_any_bytes_any_split(data: bytes, draw: st.DataObject) -> None:
    whole = env(data, [])
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=20))
    assert env(data, cuts) == whole


line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)))


@given(words=st.lists(line_text, min_size=1, max_size=6))
def test_quoted_arguments_come_back_verbatim(words: list[str]) -> None:
    line = " ".join(quote_arg(w) for w in words)
    assert parse_args(line) == words
    assert encode_command("EXEC", *words).endswith(b"\n")
