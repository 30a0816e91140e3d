"""Phone normalisation for lead import: the fast path agrees with phonenumbers.parse."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.db.leads_io import PhoneNormaliser, escape_cell, unescape_cell


def slow(raw: str, region: str) -> str | None:
    try:
        num = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=400)
@given(
    region=st.sampled_from(["IN", "US", "GB", "DE", "IT", "NP"]),
    digits=st.text("0123456789", min_size=1, max_size=14)
    | st.from_regex(r"[6-9][0-9]{9}", fullmatch=True)
    | st.from_regex(r"91[6-9][0-9]{9}", fullmatch=True),
)
def test_fast_path_matches_parse(region: str, digits: str) -> None:
    norm = PhoneNormaliser(region, "Asia/Kolkata")
    got, why = norm.e164(digits)
    assert got == slow(digits, region)
    assert (got is None) == bool(why)


def test_examples_and_time_zones() -> None:
    norm = PhoneNormaliser("IN", "Asia/Kolkata")
    assert norm.e164("98765 43210") == ("+919876543210", "")
    assert norm.e164("+91-98765-43210") == ("+919876543210", "")
    assert norm.e164("'+919876543210") == ("+919876543210", "")  # our export's escape
    assert norm.e164("12345")[1] == "invalid number"
    assert norm.e164("")[1] == "missing phone"
    assert norm.timezone_for("+919876543210") == "Asia/Kolkata"
    assert norm.timezone_for("+442079460958") == "Europe/London"
    assert norm.timezone_for("+9779841234567") == "Asia/Kathmandu"  # alias mapped


@given(st.text(max_size=20))
def test_escape_round_trip(cell: str) -> None:
    escaped = escape_cell(cell)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(escaped) == cell or cell.startswith("'")
