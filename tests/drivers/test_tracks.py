"""Track 1 / track 2 parsing (ISO/IEC 7813) — valid tables, then damage of every kind, never echoing content."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emv.tracks import parse_track1, parse_track2, parse_tracks
from pos_errors import RemoteProtocolError

PAN = "6212345678901234"  # made-up test account


@pytest.mark.parametrize(
    ("raw",                                      "expiry", "service", "chip", "pin"),
    [
        (b";6212345678901234=30122201234567890?",  "3012",  "220",     True,   True),
        (b"6212345678901234=3012201",              "3012",  "201",     True,   False),
        (b";6212345678901234=2705101000?\x3f",     "2705",  "101",     False,  False),
        (b"6212345678901234=2501606",              "2501",  "606",     True,   True),
    ],
)
def test_track2_table(raw: bytes, expiry: str, service: str, chip: bool, pin: bool) -> None:
    stripe = parse_track2(raw)
    assert (stripe.pan, stripe.expiry_yymm, stripe.service_code) == (PAN, expiry, service)
    assert (stripe.chip_card, stripe.pin_required) == (chip, pin)
    assert stripe.track2.startswith(PAN + "=") and PAN not in repr(stripe)


@pytest.mark.parametrize(
    "raw",
    [b"", b";?", b"6212345678901234", b"62123=3012220", b"6212345678901234=30", b"6212345678901234=3013220",
     b"6212345678901234=30122x0", b"62123456789012X4=3012220", b"6212345678901234=3012220ABC", b"\xff\xfe"],
)
def test_bad_track2_is_refused_without_echoing_it(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_track2(raw)
    assert PAN not in str(caught.value) and "621234" not in str(caught.value)


def test_track1_adds_the_name_and_must_agree() -> None:
    stripe = parse_tracks(track2=b"6212345678901234=3012220", track1=b"%B6212345678901234^LI/SI^3012220?")
    assert stripe.name == "LI/SI"
    assert parse_track1(b"B6212345678901234^ ZHANG ^3012") == (PAN, "ZHANG")
    with pytest.raises(RemoteProtocolError, match="disagree"):
        parse_tracks(track2=b"6212345678901234=3012220", track1=b"%B6212345678901235^LI/SI^3012220?")
    with pytest.raises(RemoteProtocolError):
        parse_track1(b"%A6212345678901234^LI^3012?")


@given(st.binary(max_size=80), st.binary(max_size=80))
def test_any_bytes_give_a_stripe_or_a_remote_protocol_error(track2: bytes, track1: bytes) -> None:
    try:
        parse_tracks(track2=track2, track1=track1)
    except RemoteProtocolError:
        pass
