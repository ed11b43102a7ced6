"""CA public keys expire (EMV 4.4 Book 2 §5.1: a CAPK is withdrawn at its expiry date): Visa 01 and Mastercard 05
have expired and are no longer shipped (the current Visa 09 and Mastercard 06 are, valid through 31 Dec 2033); a
certificate under an expired key fails ODA with the method's TVR bit, and the transaction then goes online or
declines as the action codes say — contact (the ``mastercard-expired-capk`` test card, signed under the
simulator's retired CA ``E1``) and contactless (fDDA). The same card verifies the day before the key expired:
only the date fails it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from emv.capk import LIVE_CAPKS, RETIRED_CAPKS, SHIPPED_CAPKS, TEST_CAPKS, Capk, retired
from emv.config import STANDARD_AIDS, terminal_config, trusted_capks
from emv.contactless import Status
from emv.kernel import Transaction
from emv.tvr import TvrBit, bits_set
from pos_errors import ConfigError
from sim.backends.pki import SIM_CA_INDEX, SIM_RETIRED_CA_INDEX, SIM_TRUST, capk_entries
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.contactless_cards import CONTACTLESS_CATALOGUE
from tests.emv import test_contactless
from tests.emv.helpers import CONFIG, UN, drive, issuer

MASTERCARD, VISA = bytes.fromhex("A000000004"), bytes.fromhex("A000000003")
TODAY = dt.date(2026, 12, 3)
IDS = {"terminal_id": "T0000001", "merchant_id": "898440154110001", "ifd_serial": "T0000001"}


def test_the_retired_keys_are_not_shipped_and_not_trusted() -> None:
    assert [(c.rid, c.index, c.expiry) for c in retired(RETIRED_CAPKS.values(), TODAY)] == [
        (VISA, 0x01, "091231"), (MASTERCARD, 0x05, "241231")]
    assert retired(LIVE_CAPKS.values(), TODAY) == [] and retired(TEST_CAPKS.values(), TODAY) == []
    assert not set(RETIRED_CAPKS) & set(SHIPPED_CAPKS)
    for profile in ("production", "test"):
        keys = {c.key for c in trusted_capks({}, profile, TODAY)}
        assert (MASTERCARD, 0x05) not in keys and (VISA, 0x01) not in keys
        assert {(VISA, 0x09), (MASTERCARD, 0x06)} <= keys
    config = terminal_config({"aids": [{"aid": "A0000000041010"}]}, **IDS, today=TODAY)
    assert set(config.capks) == {(VISA, 0x09), (MASTERCARD, 0x06)}


def test_the_current_keys_are_valid_through_their_expiry_day_and_withdrawn_the_day_after() -> None:
    assert {c.key for c in trusted_capks({}, "production", dt.date(2033, 12, 31))} == {
        (VISA, 0x09), (MASTERCARD, 0x06)}
    assert trusted_capks({}, "production", dt.date(2034, 1, 1)) == []
    # a retired key an operator adds back (the old Mastercard 05, same bytes and date) is left out again
    mc05 = RETIRED_CAPKS[(MASTERCARD, 0x05)]
    entry = {"rid": mc05.rid.hex(), "index": "05", "modulus": mc05.modulus.hex(), "checksum": mc05.checksum.hex(),
             "expiry": mc05.expiry}
    assert (MASTERCARD, 0x05) not in {c.key for c in trusted_capks({"capks": [entry]}, "production", TODAY)}
    assert (MASTERCARD, 0x05) in {c.key for c in trusted_capks({"capks": [entry]}, "production",
                                                               dt.date(2024, 12, 31))}


def test_an_operator_key_past_its_date_is_left_out_and_a_bad_date_refused() -> None:
    entries = capk_entries()  # the simulator's, with their expiry dates: E0 valid, E1 expired
    keys = {c.key for c in trusted_capks({"capks": entries}, "test", TODAY)}
    assert (MASTERCARD, SIM_CA_INDEX) in keys and (MASTERCARD, SIM_RETIRED_CA_INDEX) not in keys
    with pytest.raises(ConfigError, match="expiry must be a date YYMMDD"):
        trusted_capks({"capks": [{**entries[0], "expiry": "241331"}]}, "test", TODAY)


def _contact(when: dt.date, config=CONFIG):
    profile = CATALOGUE["mastercard-expired-capk"]
    tx = Transaction(config, amount_minor=12345, when=dt.datetime.combine(when, dt.time(12)),
                     unpredictable_number=lambda: UN, sequence_counter=42)
    card = CardApplet(profile, random_bytes=lambda n: bytes(range(1, n + 1)))
    return drive(tx, card.process, host=issuer(profile, "00"))


def test_a_card_under_an_expired_ca_key_fails_dda_and_goes_online() -> None:
    assert SIM_TRUST[(MASTERCARD, SIM_RETIRED_CA_INDEX)].expiry == "241231"
    before = _contact(dt.date(2024, 12, 31))  # the key still valid: the chain itself verifies
    assert bits_set(TvrBit, bytes.fromhex(before.finished.receipt["tvr"])[:1]) == []
    after = _contact(dt.date(2025, 1, 1))
    assert bits_set(TvrBit, bytes.fromhex(after.finished.receipt["tvr"])[:1]) == ["DDA_FAILED"]
    assert after.finished.receipt["oda"] == "DDA failed"
    assert after.online is not None and after.finished.outcome.value == "approved"  # TAC-Online: online


def test_with_dda_failed_in_the_denial_codes_it_declines_offline() -> None:
    deny = dataclasses.replace(CONFIG, aids=tuple(dataclasses.replace(a, tac_denial=bytes.fromhex("0800000000"))
                                                  for a in STANDARD_AIDS))
    run = _contact(dt.date(2025, 1, 1), deny)
    assert run.finished.outcome.value == "declined" and run.online is None
    assert "DDA_FAILED" in bits_set(TvrBit, bytes.fromhex(run.finished.receipt["tvr"]))


def test_fdda_under_an_expired_ca_key_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = CONTACTLESS_CATALOGUE["paywave-offline"]
    assert test_contactless.tap(profile, 2000).result.outcome.status is Status.APPROVED
    expired = {k: (dataclasses.replace(c, expiry="241231") if k[1] == SIM_CA_INDEX else c)
               for k, c in SIM_TRUST.items()}  # the same key, past its date (TODAY there: 1 May 2026)
    assert all(isinstance(c, Capk) for c in expired.values())
    monkeypatch.setattr(test_contactless, "SIM_TRUST", expired)
    done = test_contactless.tap(profile, 2000)
    assert done.result.outcome.status is Status.DECLINED and "fDDA failed" in done.result.outcome.reason
