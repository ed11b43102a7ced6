"""Online PIN under the sign-on PIK (master/session, ``[host] pin_key = "pik"``), through the real parts: the
HostClient signs on over mutual TLS, hands the PIK *as delivered* (under the TMK) to the simulated PIN pad over a
pty, the pad deciphers it under its own copy of the TMK, checks the check value and makes an ISO 9564 format 0
block; the simulated acquirer deciphers it under its PIK and checks the PIN. psec is the independent oracle of the
format 0 block. The terminal never holds the PIK in clear."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.host.dukpt_link import UnmacedKeyError
from drivers.pinpad import PinPad
from drivers.pinpad_codec import WorkingKeyLoad, decode_working_key, encode_working_key
from emv.crypto.des import tdes_ecb_decrypt, tdes_ecb_encrypt
from emv.crypto.mac import kcv_tdes
from emv.crypto.pin import derive_initial_key
from flows.ports import AuthRequest
from pos_errors import DeviceError, LinkError, LocalProtocolError, RemoteProtocolError
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from sim.devices.pinpad import TEST_KBPK, PinPadSim
from tests.host.conftest import BDK, GOOD, started
from tests.host.test_secure_link import TID, client, request

psec_pinblock = pytest.importorskip("psec.pinblock")

AES_KSN = bytes.fromhex("123456789012345600000000")


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


@pytest.fixture
def pad(security: AcquirerSecurity) -> Iterator[tuple[PinPadSim, PinPad]]:
    sim = PinPadSim(scheme="aes", initial_key=derive_initial_key("aes", BDK, AES_KSN), initial_ksn=AES_KSN)
    sim.tmk = security.tmks[TID]  # the technician loaded the same TMK into the pad
    driver = PinPad(sim.start(), response_timeout_s=2.0)
    driver.open()
    yield sim, driver
    driver.close()
    sim.stop()


def _with_pin(req: AuthRequest, block: bytes | None) -> AuthRequest:
    return dataclasses.replace(req, pin_block=block, ksn=None)


def test_pin_under_the_pik_is_verified_by_the_host(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                   pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    host = client(acquirer, security)
    driver.use_working_key(host.pin_key)
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(GOOD.pan, 1250, 5.0)
    assert entry.status == "entered" and entry.ksn is None and entry.block_format == 0
    assert entry.pin_block is not None and len(entry.pin_block) == 8
    pik = security.keys_of(TID).pik  # type: ignore[union-attr]  # the host's PIK, to check with the oracle
    assert psec_pinblock.decode_pinblock_iso_0(tdes_ecb_decrypt(pik, entry.pin_block), GOOD.pan) == "1234"
    answer = host.authorize(_with_pin(request(11), entry.pin_block))
    assert answer.approved
    assert acquirer.wire_log[:2] == ["0800", "0810"]  # sign-on came from the PIN step, before the 0200


def test_wrong_pin_under_the_pik_is_declined_55(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    host = client(acquirer, security)
    driver.use_working_key(host.pin_key)
    sim.auto_pin = "9999"
    entry = driver.request_online_pin(GOOD.pan, 1250, 5.0)
    assert host.authorize(_with_pin(request(12), entry.pin_block)).response_code == "55"


def test_block_under_an_old_pik_is_not_accepted(acquirer: AcquirerSim, security: AcquirerSecurity,
                                                pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    host = client(acquirer, security)
    driver.use_working_key(host.pin_key)
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(GOOD.pan, 1250, 5.0)
    host.sign_on()  # new keys at the host: the block was made under the previous PIK
    assert host.authorize(_with_pin(request(13), entry.pin_block)).response_code == "63"


def test_key_error_with_a_pik_block_signs_on_does_not_resend_and_is_unknown(acquirer: AcquirerSim,
                                                                             security: AcquirerSecurity,
                                                                             pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    host = client(acquirer, security)
    driver.use_working_key(host.pin_key)
    sim.auto_pin = "1234"
    entry = driver.request_online_pin(GOOD.pan, 1282, 5.0)  # magic .82: the host drops the keys, answers A0
    with pytest.raises(UnmacedKeyError, match="without a valid MAC"):  # never "nothing charged": reversed
        host.authorize(_with_pin(request(14, amount=1282), entry.pin_block))
    assert acquirer.wire_log == ["0800", "0810", "0200", "0210", "0800", "0810"]  # signed on, not resent
    assert [e.response_code for e in acquirer.ledger] == []


def test_pad_refuses_a_working_key_with_a_wrong_check_value(security: AcquirerSecurity,
                                                            pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    pik = bytes.fromhex("1C1C1C1C1C1C1C1C0E0E0E0E0E0E0E0E")
    under_tmk = tdes_ecb_encrypt(security.tmks[TID], pik)
    driver.load_working_key(under_tmk, kcv_tdes(pik, 4))  # right: accepted
    wrong = bytes([kcv_tdes(pik, 4)[0] ^ 1]) + kcv_tdes(pik, 4)[1:]
    with pytest.raises(DeviceError, match="check value does not match"):
        driver.load_working_key(under_tmk, wrong)
    driver.use_working_key(lambda: (under_tmk, wrong))
    with pytest.raises(DeviceError, match="check value does not match"):
        driver.request_online_pin(GOOD.pan, 100, 2.0)
    assert not sim.awaiting_pin  # no entry opened: no PIN went under a key the host lacks


def test_pad_without_a_tmk_has_no_working_key(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    sim.tmk = None
    with pytest.raises(DeviceError, match="no usable key"):
        driver.load_working_key(bytes(16), bytes(4))


def test_no_sign_on_means_no_pin_entry(pad: tuple[PinPadSim, PinPad]) -> None:
    _, driver = pad

    def refused() -> tuple[bytes, bytes]:
        raise LinkError("cannot connect to acquirer")

    driver.use_working_key(refused)
    with pytest.raises(DeviceError, match="no PIN key from the acquirer: cannot connect"):
        driver.request_online_pin(GOOD.pan, 100, 2.0)


def test_the_terminal_keeps_the_pik_only_enciphered(acquirer: AcquirerSim, security: AcquirerSecurity) -> None:
    host = client(acquirer, security)
    under_tmk, kcv = host.pin_key()
    pik = security.keys_of(TID).pik  # type: ignore[union-attr]
    assert under_tmk != pik and tdes_ecb_decrypt(security.tmks[TID], under_tmk) == pik
    assert kcv == kcv_tdes(pik, 4)
    held = vars(host._keys)  # noqa: SLF001 - what the client object holds
    assert pik not in held.values() and pik.hex() not in repr(host._keys).lower()  # noqa: SLF001


psec_tr31 = pytest.importorskip("psec.tr31")


def test_tmk_loaded_into_the_pad_as_a_k0_key_block(pad: tuple[PinPadSim, PinPad]) -> None:
    sim, driver = pad
    sim.tmk = None
    tmk = TMK_FOR_PAD
    block = psec_tr31.wrap(TEST_KBPK["D"], "D0000K0TB00N0000", tmk)
    assert driver.load_master_key(block) == kcv_tdes(tmk, 3) and sim.tmk == tmk
    pik = bytes.fromhex("1C1C1C1C1C1C1C1C0E0E0E0E0E0E0E0E")
    driver.load_working_key(tdes_ecb_encrypt(tmk, pik), kcv_tdes(pik, 4))  # usable at once


TMK_FOR_PAD = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.mark.parametrize(("header", "kcv", "why"), [
    ("D0000K0AB00N0000", b"", "refused the key block"),  # an AES key is no TMK of this scheme
    ("D0000K0TE00N0000", b"", "refused the key block"),  # encrypt-only
    ("D0000K0TB00N0000", b"\x00\x00\x00", "check value does not match"),
])
def test_pad_refuses_an_unusable_tmk_block(pad: tuple[PinPadSim, PinPad], header: str, kcv: bytes,
                                           why: str) -> None:
    sim, driver = pad
    before = sim.tmk
    with pytest.raises(DeviceError, match=why):
        driver.load_master_key(psec_tr31.wrap(TEST_KBPK["D"], header, TMK_FOR_PAD), kcv)
    assert sim.tmk == before


@given(st.binary(max_size=40))
def test_working_key_payload_decoder_raises_only_our_error(raw: bytes) -> None:
    try:
        load = decode_working_key(raw)
    except RemoteProtocolError:
        return
    assert encode_working_key(load) == raw  # whatever decodes is exactly one well-formed payload


def test_working_key_payload_is_checked_before_sending() -> None:
    with pytest.raises(LocalProtocolError):
        encode_working_key(WorkingKeyLoad(bytes(8), bytes(4)))  # a single-length key is not a PIK
