"""What a masked transcript keeps of the card (security review, issue item 2): the PAN first 6 / last 4 at most;
the track and cardholder data objects blanked in place, tag and length kept, so the transcript still decodes and
replays; and a production terminal saves no transcripts at all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emv import tlv
from emv.cli import replay
from emv.transcript import Transcript, mask_transcript
from pos_errors import ConfigError
from sim.devices.cards import CATALOGUE
from sim.runner.transcripts import record
from terminal.config import Settings

PAN = "6212341234567890"
TRACK2 = PAN + "D30122011234567890123F"  # expiry 3012, service code 201, discretionary data 1234567890123
TRACK1 = b"B" + PAN.encode() + b"^ZHANG/SAN^30122011234567890"


def _record(*objects: tlv.Tlv) -> bytes:
    return tlv.encode([tlv.Tlv.template(0x70, *objects)]) + b"\x90\x00"


CONTACT = _record(tlv.Tlv(0x5A, bytes.fromhex(PAN)), tlv.Tlv(0x57, bytes.fromhex(TRACK2)),
                  tlv.Tlv(0x5F24, bytes.fromhex("301231")), tlv.Tlv(0x5F20, b"ZHANG/SAN "),
                  tlv.Tlv(0x56, TRACK1), tlv.Tlv(0x9F1F, b"123456789"), tlv.Tlv(0x9F20, bytes.fromhex("1234567F")),
                  tlv.Tlv(0x9F0B, b"ZHANG SAN THE CARDHOLDER WITH A LONG NAME"))

# tag: what the masked value must be, byte for byte
EXPECTED = {
    0x5A:   bytes.fromhex("6212340000007890"),
    0x57:   bytes.fromhex("6212340000007890" "D" "00000000000000000000" "F"),
    0x5F24: bytes.fromhex("491231"),
    0x5F20: b" " * 10,
    0x56:   b" " * len(TRACK1),
    0x9F1F: b" " * 9,
    0x9F20: bytes(4),
    0x9F0B: b" " * 41,
}


def _masked(response: bytes, **meta: object) -> bytes:
    transcript = Transcript(meta={"amount_minor": 3000, **meta}, exchanges=[(bytes.fromhex("00B2010C00"), response)])
    text = mask_transcript(transcript).to_json()
    return Transcript.from_json(text).exchanges[0][1]


def test_track_and_cardholder_tags_are_blanked_keeping_tag_and_length() -> None:
    masked = _masked(CONTACT, when="2026-12-03T10:00:00")
    assert len(masked) == len(CONTACT) and masked[-2:] == b"\x90\x00"
    original = tlv.spans(CONTACT[:-2])
    assert [(t, s, e) for t, s, e in tlv.spans(masked[:-2])] == original  # same tags, lengths and offsets
    values = tlv.flatten(tlv.decode(masked[:-2]))
    assert {tag: values[tag] for tag in EXPECTED} == EXPECTED
    for secret in (PAN.encode(), bytes.fromhex(PAN), b"ZHANG", b"1234567890123", bytes.fromhex("301231"),
                   bytes.fromhex("1234567890123F"), b"3012201"):
        assert secret not in masked


def test_an_expired_card_stays_expired_so_the_replay_decides_the_same() -> None:
    values = tlv.flatten(tlv.decode(_masked(CONTACT, when="2031-02-01T10:00:00")[:-2]))
    assert values[0x5F24] == bytes.fromhex("000101")
    tap = tlv.flatten(tlv.decode(_masked(CONTACT, date="2030-12-31")[:-2]))  # a tap's meta names the day
    assert tap[0x5F24] == bytes.fromhex("491231")


def test_contactless_track_2_in_a_77_template_is_blanked() -> None:
    answer = tlv.encode([tlv.Tlv.template(0x77, tlv.Tlv(0x9F6B, bytes.fromhex(TRACK2)),
                                          tlv.Tlv(0x9F27, b"\x80"))]) + b"\x90\x00"
    masked = _masked(answer, date="2026-12-03")
    values = tlv.flatten(tlv.decode(masked[:-2]))
    assert values[0x9F6B] == EXPECTED[0x57] and values[0x9F27] == b"\x80"


def test_a_record_that_does_not_decode_is_blanked_where_the_tags_stand() -> None:
    broken = bytearray(CONTACT)
    broken[1] += 5  # the 70 template claims more than there is: the record does not decode
    masked = _masked(bytes(broken))
    with pytest.raises(ValueError):
        tlv.decode(bytes(broken[:-2]))
    for secret in (PAN.encode(), bytes.fromhex(PAN), b"ZHANG", b"1234567890123", bytes.fromhex("301231")):
        assert secret not in masked
    assert bytes.fromhex("621234") in masked and b"^" not in masked


@pytest.mark.parametrize("key", ["unionpay-debit", "visa-credit", "mastercard-debit", "expired"])
def test_simulated_cards_keep_nothing_but_first_6_last_4_and_still_replay(key: str) -> None:
    card = CATALOGUE[key]
    transcript = record(key)
    text = transcript.to_json()
    name_hex = card.cardholder_name.encode().hex().upper()
    assert name_hex not in text and f"D{card.expiry[:4]}" not in text
    assert card.pan not in text or card.pan[6:-4] == "0" * (len(card.pan) - 10)  # (some test PANs are all 0 there)
    for _, response in transcript.exchanges:
        if len(response) > 2 and response[0] in (0x70, 0x77):
            values = tlv.flatten(tlv.decode(response[:-2]))
            assert values.get(0x5F20, b" ").strip() == b""
            assert values.get(0x5F24, b"\x49\x12\x31") in (bytes.fromhex("491231"), bytes.fromhex("000101"))
    lines, finished = replay(Transcript.from_json(text))
    assert finished.outcome.value == transcript.meta["outcome"]
    assert not any(line.startswith("!") for line in lines)


def test_production_refuses_transcripts_dir(tmp_path) -> None:
    with pytest.raises(ConfigError, match="emv.transcripts_dir"):
        Settings.from_dict({"emv": {"transcripts_dir": str(tmp_path)}})
    Settings.from_dict({"terminal": {"profile": "test"}, "emv": {"transcripts_dir": str(tmp_path)}})
    config = tmp_path / "t.toml"
    config.write_text(f'[emv]\ntranscripts_dir = "{tmp_path}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "emv.transcripts_dir is for test benches" in done.stderr


def test_a_damaged_tap_answer_with_only_9f6b_still_has_its_pan_found_and_masked() -> None:
    answer = bytearray(tlv.encode([tlv.Tlv.template(0x77, tlv.Tlv(0x9F6B, bytes.fromhex(TRACK2)))]) + b"\x90\x00")
    answer[1] += 3  # does not decode: the PAN is looked for byte-wise, 9F6B too
    transcript = Transcript(exchanges=[(b"\x80\xa8\x00\x00", bytes(answer)), (b"\x00\xb2", b"\x69\x85")])
    masked = mask_transcript(transcript).exchanges[0][1]
    assert bytes.fromhex(PAN) not in masked and bytes.fromhex("6212340000007890D000") in masked
