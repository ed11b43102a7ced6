"""Offline PIN (Book 3 §10.5.1): the kernel asks, the PIN pad VERIFYs with the card, only the SW comes back."""

from __future__ import annotations

import dataclasses

from emv.actions import VerifyOfflinePin
from emv.config import TerminalConfig
from emv.tvr import TvrBit, bits_set
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, drive, issuer, transaction

OFFLINE_CAPABLE = dataclasses.replace(CONFIG, capabilities=bytes.fromhex("E0F8C8"))


def _run(key: str, pins: list[str], config: TerminalConfig = OFFLINE_CAPABLE):
    profile = CATALOGUE[key]
    card = CardApplet(profile, random_bytes=lambda n: bytes(range(7, 7 + n)))
    return card, drive(transaction(config), card.process, host=issuer(profile, "00"), offline_pins=pins)


def _tvr(run) -> list[str]:
    return bits_set(TvrBit, bytes.fromhex(run.finished.receipt["tvr"]))


def test_plaintext_offline_pin_right_first_time():
    card, run = _run("offline-pin", ["1234"])
    assert run.finished.receipt["cvm_results"] == "410302" and run.finished.outcome.value == "approved"
    assert card.pin_tries == 3
    verify = [a for a in run.actions if isinstance(a, VerifyOfflinePin)]
    assert len(verify) == 1 and not verify[0].enciphered and verify[0].tries_left == 3


def test_wrong_then_right_offline_pin_prompts_again_with_the_tries_left():
    card, run = _run("offline-pin", ["0000", "1234"])
    verify = [a for a in run.actions if isinstance(a, VerifyOfflinePin)]
    assert [v.tries_left for v in verify] == [3, 2]
    assert run.finished.receipt["cvm_results"] == "410302"


def test_three_wrong_offline_pins_exceed_the_try_limit_and_fall_to_the_next_rule():
    card, run = _run("offline-pin", ["0000", "1111", "2222"])
    assert card.pin_tries == 0
    assert "PIN_TRY_LIMIT_EXCEEDED" in _tvr(run)
    assert run.finished.receipt["cvm_results"] == "1F0302"  # 'no CVM' rule after the failed PIN rule


def test_enciphered_offline_pin_under_the_icc_key():
    card, run = _run("offline-enciphered-pin", ["1234"])
    assert run.finished.receipt["cvm_results"] == "440302"
    assert run.apdus("GET CHALLENGE")
    verify = [a for a in run.actions if isinstance(a, VerifyOfflinePin)][0]
    assert verify.enciphered and len(verify.icc_modulus) == 96 and len(verify.challenge) == 8


def test_enciphered_wrong_pin_is_counted_by_the_card():
    card, run = _run("offline-enciphered-pin", ["9999", "1234"])
    assert card.pin_tries == 3 and run.finished.receipt["cvm_results"] == "440302"
    assert len(run.apdus("GET CHALLENGE")) == 2  # a fresh challenge for each attempt


def test_pin_blocked_card_is_not_prompted_and_declines():
    _, run = _run("pin-blocked", [])
    assert not [a for a in run.actions if isinstance(a, VerifyOfflinePin)]
    assert {"PIN_TRY_LIMIT_EXCEEDED", "CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL"} <= set(_tvr(run))
    assert run.finished.outcome.value == "declined" and run.finished.receipt["cvm_results"] == "010301"


def test_terminal_without_offline_pin_capability_skips_the_rule():
    _, run = _run("offline-pin", [], config=CONFIG)  # 9F33 E068C8: no offline PIN
    assert run.finished.receipt["cvm_results"] == "1F0302"
    assert "PIN_PAD_NOT_PRESENT_OR_NOT_WORKING" not in _tvr(run)


# --- the same through the real PIN pad driver, a pty and the simulated pad that reaches the card -------------


def test_offline_pin_through_the_pin_pad_pty_reports_only_the_status_word():
    import threading
    import time

    from drivers.pinpad import PinPad
    from drivers.pinpad_codec import decode_offline_pin_request, encode_offline_pin_request
    from emv.crypto.pin import derive_initial_key
    from flows.ports import OfflinePinRequest
    from sim.devices.pinpad import PinPadSim

    ksn = bytes.fromhex("123456789012345600000000")
    sim = PinPadSim(initial_key=derive_initial_key("aes", bytes(16), ksn), initial_ksn=ksn)
    card = CardApplet(CATALOGUE["offline-pin"])
    card.process(bytes.fromhex("00A4040008A000000333010101" + "00"))
    sent: list[bytes] = []
    sim.card_channel = lambda apdu: (sent.append(apdu), card.process(apdu))[1]
    driver = PinPad(sim.start(), response_timeout_s=2.0)
    driver.open()
    try:
        request = OfflinePinRequest(False, 3000, 3)
        assert decode_offline_pin_request(encode_offline_pin_request(request, 5.0)) == (request, 5.0)

        def customer(keys: str) -> None:
            deadline = time.monotonic() + 5
            while not sim.awaiting_pin and time.monotonic() < deadline:
                time.sleep(0.01)
            for key in keys.split():
                sim.press(key)

        for keys, sw in (("9 9 9 9 ENTER", 0x63C2), ("1 2 3 4 ENTER", 0x9000)):
            typing = threading.Thread(target=customer, args=(keys,), daemon=True)
            typing.start()
            result = driver.verify_offline_pin(request, 5.0)
            typing.join()
            assert (result.status, result.sw) == ("entered", sw)
        assert [a[:4].hex().upper() for a in sent] == ["00200080", "00200080"]
        assert "1234" not in repr(result) and card.pin_tries == 3
    finally:
        driver.close()
        sim.stop()


def test_enciphered_pin_uses_the_icc_pin_encipherment_key_when_the_card_has_one():
    from sim.backends import pki

    profile = dataclasses.replace(CATALOGUE["offline-enciphered-pin"], pin_key=True)
    card = CardApplet(profile, random_bytes=lambda n: bytes(range(7, 7 + n)))
    run = drive(transaction(OFFLINE_CAPABLE), card.process, host=issuer(profile, "00"), offline_pins=["1234"])
    verify = [a for a in run.actions if isinstance(a, VerifyOfflinePin)][0]
    assert verify.icc_modulus == pki.make_key(f"pin:{profile.key}", pki.ICC_BITS).modulus_bytes
    assert verify.icc_modulus != pki.icc_key(profile.key).modulus_bytes
    assert run.finished.receipt["cvm_results"] == "440302"


def test_a_card_whose_try_counter_never_goes_down_cannot_loop_the_kernel():
    profile = CATALOGUE["offline-pin"]
    card = CardApplet(profile)

    def stuck(apdu: bytes) -> bytes:
        return b"\x63\xc2" if apdu[:2] == b"\x00\x20" else card.process(apdu)

    run = drive(transaction(OFFLINE_CAPABLE), stuck, host=issuer(profile, "00"), offline_pins=["1234"] * 20)
    assert len([a for a in run.actions if isinstance(a, VerifyOfflinePin)]) == 2
    assert run.finished.receipt["cvm_results"] == "1F0302"  # the PIN rule failed; 'no CVM' took over


def test_pin_try_counter_is_read_once_when_enciphered_falls_back_to_plaintext():
    # Issue 20: replayed cards showed GET DATA 9F17 twice. Enciphered offline PIN (apply next) fails for want of
    # an ICC key (no ODA on this card), then plaintext offline PIN: one GET DATA for both rules.
    profile = dataclasses.replace(CATALOGUE["offline-pin"], cvm_list=bytes.fromhex("00000000" "00000000"
                                                                                   "4403" "4103" "1F03"))
    card = CardApplet(profile, random_bytes=lambda n: bytes(range(7, 7 + n)))
    run = drive(transaction(OFFLINE_CAPABLE), card.process, host=issuer(profile, "00"), offline_pins=["1234"])
    assert len(run.apdus("GET DATA 9F17")) == 1
    assert run.finished.receipt["cvm_results"] == "410302"
