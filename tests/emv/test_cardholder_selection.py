"""Cardholder selection among applications (Book 1 §12.4): the kernel offers, the PIN pad asks the customer."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from emv.actions import ChooseApplication, Finished
from pos_errors import LocalProtocolError
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, issuer, transaction

CHOOSING = dataclasses.replace(CONFIG, cardholder_selection=True)


def _until_choice(tx, card):
    action = tx.start()
    while not isinstance(action, ChooseApplication | Finished):
        action = tx.on_response(card.process(action.apdu))
    return action


def test_the_customer_picks_the_lower_priority_application():
    profile = CATALOGUE["two-apps-choice"]
    card, tx = CardApplet(profile), transaction(CHOOSING)
    offer = _until_choice(tx, card)
    assert offer == ChooseApplication(("UnionPay Credit", "UnionPay Debit"))  # priority order
    action = tx.on_application(1)
    host = issuer(profile, "00")
    while not isinstance(action, Finished):
        if hasattr(action, "apdu"):
            action = tx.on_response(card.process(action.apdu))
        elif type(action).__name__ == "RequestOnlinePin":
            action = tx.on_pin("entered")
        else:
            action = tx.on_online_result(*host(action))
    assert action.receipt["app_label"] == "UnionPay Debit" and action.outcome.value == "approved"


def test_cancelled_choice_terminates_and_bad_index_is_refused():
    tx = transaction(CHOOSING)
    offer = _until_choice(tx, CardApplet(CATALOGUE["two-apps-choice"]))
    assert isinstance(offer, ChooseApplication)
    with pytest.raises(LocalProtocolError):
        tx.on_application(2)
    done = tx.on_application(None)
    assert isinstance(done, Finished) and done.outcome.value == "terminated"


def test_single_application_or_selection_off_is_not_offered():
    from tests.emv.helpers import drive

    for key, config in (("unionpay-debit", CHOOSING), ("two-apps-choice", CONFIG)):
        profile = CATALOGUE[key]
        run = drive(transaction(config), CardApplet(profile).process, host=issuer(profile, "00"))
        assert isinstance(run.finished, Finished) and run.finished.outcome.value == "approved"
        assert not any(isinstance(a, ChooseApplication) for a in run.actions)


def test_choice_through_the_pin_pad_pty():
    from drivers.pinpad import PinPad
    from drivers.pinpad_codec import decode_choose, encode_choose
    from emv.crypto.pin import derive_initial_key
    from sim.devices.pinpad import PinPadSim

    assert decode_choose(encode_choose(("A", "B"), 2.0)) == (("A", "B"), 2.0)
    ksn = bytes.fromhex("123456789012345600000000")
    sim = PinPadSim(initial_key=derive_initial_key("aes", bytes(16), ksn), initial_ksn=ksn)
    driver = PinPad(sim.start(), response_timeout_s=2.0)
    driver.open()
    try:
        for key, expected in (("2", 1), ("CANCEL", None)):
            def customer(key=key):
                deadline = time.monotonic() + 5
                while not sim.awaiting_pin and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert "1.UnionPay Credit" in sim.display[0]
                sim.press(key)
            typing = threading.Thread(target=customer, daemon=True)
            typing.start()
            assert driver.choose_application(("UnionPay Credit", "UnionPay Debit"), 5.0) == expected
            typing.join()
    finally:
        driver.close()
        sim.stop()
