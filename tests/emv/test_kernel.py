"""The sans-I/O kernel against the simulated card applet in memory, one test per path through a
transaction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emv import apdu, tlv
from emv.actions import Finished, GoOnline, KernelReason, Outcome, SendApdu
from emv.config import AidConfig
from emv.crypto import arqc
from emv.kernel import FIELD_55_TAGS, Transaction
from emv.tvr import TvrBit, bits_set
from pos_errors import LocalProtocolError
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, UN, WHEN, config_with, drive, run_card, session_key, transaction

APPROVING = ["unionpay-debit", "visa-credit", "mastercard-debit", "no-pse", "gpo-6985"]


@pytest.mark.parametrize("key", APPROVING)
def test_online_approval_ends_with_a_tc(key: str) -> None:
    run = run_card(key, "00")
    profile = CATALOGUE[key]
    assert run.finished.outcome is Outcome.APPROVED, run.finished.reason
    assert run.finished.receipt["cid"] == "40"
    assert run.finished.receipt["aid"] == profile.aid.hex().upper()
    assert run.finished.receipt["pan"] == profile.pan[:6] + "******" + profile.pan[-4:]
    assert run.finished.receipt["cvm"] == "online PIN"
    assert run.finished.receipt["tvr"] == "8000048000"  # ODA not performed, online PIN entered, floor limit
    assert run.finished.receipt["tsi"] == "7800"  # CV, card RM, issuer authentication, terminal RM performed


@pytest.mark.parametrize("key", APPROVING)
def test_go_online_carries_what_the_acquirer_needs(key: str) -> None:
    run = run_card(key, "00")
    profile, online = CATALOGUE[key], run.online
    assert isinstance(online, GoOnline)
    values = tlv.flatten(tlv.decode(online.icc_data))
    assert [t for t, _ in ((o.tag, o) for o in tlv.decode(online.icc_data))] == list(FIELD_55_TAGS)
    # the acquirer's check: option A -> session key -> AC over ac_input(field 55)
    expected = arqc.generate_ac(session_key(profile, values, online.pan_sequence), arqc.ac_input(values))
    assert values[0x9F26] == expected
    assert values[0x9F27] == b"\x80" and values[0x9F37] == UN
    assert (online.pan, online.pan_sequence) == (profile.pan, profile.psn)
    assert online.expiry_yymm == profile.expiry[:4]
    assert online.track2 is not None and online.track2.hex().upper().startswith(profile.pan + "D")
    assert profile.pan not in repr(online) and profile.pan[-8:] not in repr(online)


def test_the_kernel_names_the_commands_that_follow() -> None:
    """``SendApdu.then`` (a reader may run them at once: drivers.card_reader_batch): the PSE directory's first
    two records of SFI 1 after SELECT PSE, the next two after each directory read, the rest of the AFL after
    each READ RECORD; nothing after a command whose answer the next one depends on."""
    run = run_card("unionpay-debit", "00")
    sends = [a for a in run.actions if isinstance(a, SendApdu)]
    then = {a.purpose: a.then for a in sends}
    assert then["SELECT PSE"] == (apdu.read_record(1, 1), apdu.read_record(1, 2))
    assert then["READ RECORD 1.1 (PSE)"] == (apdu.read_record(1, 2), apdu.read_record(1, 3))
    assert then["READ RECORD 1.1"] == (apdu.read_record(1, 2), apdu.read_record(2, 1))
    assert then["READ RECORD 1.2"] == (apdu.read_record(2, 1),) and then["READ RECORD 2.1"] == ()
    assert [p for p, t in then.items() if not t] == [
        "SELECT A000000333010101 (final)", "GET PROCESSING OPTIONS", "READ RECORD 2.1",
        "GENERATE AC (first, ARQC)", "GENERATE AC (second, TC)"]
    # after a 90 00 the command named first is the one the kernel sends next, byte for byte
    named = [(sent, following) for sent, following, answer in zip(sends, sends[1:], run.answers, strict=False)
             if sent.then and answer[-2:] == b"\x90\x00"]
    assert len(named) == 4 and all(following.apdu == sent.then[0] for sent, following in named)
    assert SendApdu(b"\x00", "x", then=(b"\x01",)) == SendApdu(b"\x00", "x")  # a hint: not part of the action
    assert "then" not in repr(sends[0])


def test_happy_path_command_sequence() -> None:
    run = run_card("unionpay-debit", "00")
    assert run.purposes == [
        "SELECT PSE", "READ RECORD 1.1 (PSE)", "READ RECORD 1.2 (PSE)", "SELECT A000000333010101 (final)",
        "GET PROCESSING OPTIONS", "READ RECORD 1.1", "READ RECORD 1.2", "READ RECORD 2.1",
        "GENERATE AC (first, ARQC)", "GENERATE AC (second, TC)",
    ]
    # PDOL 9F0206 5F2A02 9F1A02 9F7A01: amount 123.45, CNY, China, unknown 9F7A sent as 00
    gpo = bytes.fromhex("80A800000D830B" "000000012345" "0156" "0156" "00" "00")
    assert run.apdus("GET PROCESSING OPTIONS") == [gpo]
    second = apdu.parse_command(run.apdus("GENERATE AC (second")[0])
    assert second.p1 == 0x40 and second.data[:2] == b"00"  # TC requested, 8A = "00"


def test_host_decline_requests_an_aac() -> None:
    run = run_card("unionpay-debit", "05")
    assert run.finished.outcome is Outcome.DECLINED
    assert run.finished.reason == "declined by the host (05)" and run.finished.code is KernelReason.DECLINED_BY_HOST
    second = apdu.parse_command(run.apdus("GENERATE AC (second")[0])
    assert second.p1 == 0x00 and second.data[:2] == b"05"
    assert run.finished.receipt["cid"] == "00"


def test_unable_to_go_online_declines_with_z3() -> None:
    run = run_card("unionpay-debit", None)
    assert run.finished.outcome is Outcome.DECLINED
    second = apdu.parse_command(run.apdus("GENERATE AC (second")[0])
    assert second.p1 == 0x00 and second.data[:2] == b"Z3" and second.data[2:12] == bytes(10)  # no 91


def test_card_declines_at_first_ac() -> None:
    run = run_card("card-declines", "00")
    assert run.finished.outcome is Outcome.DECLINED
    assert run.online is None and "card risk management" in run.finished.reason


def test_card_declines_after_online_approval_means_reverse() -> None:
    run = run_card("card-declines-after-approval", "00")
    assert run.finished.outcome is Outcome.DECLINED_AFTER_ONLINE_APPROVAL


def test_expired_card_is_declined_offline_by_iac_denial() -> None:
    run = run_card("expired", "00")
    assert run.finished.outcome is Outcome.DECLINED
    assert run.online is None
    assert "EXPIRED_APPLICATION" in bits_set(TvrBit, bytes.fromhex(run.finished.receipt["tvr"]))
    assert apdu.parse_command(run.apdus("GENERATE AC (first")[0]).p1 == 0x00  # the terminal asked for AAC


def test_no_pse_selects_through_the_aid_list() -> None:
    run = run_card("no-pse", "00")
    assert run.answers[0] == bytes.fromhex("6A82")
    assert run.purposes[1:3] == ["SELECT A000000333010101", "SELECT A000000333010101"]  # then next occurrence
    assert run.apdus("SELECT A000000333010101")[1][3] == 0x02
    assert run.finished.outcome is Outcome.APPROVED


def test_gpo_6985_moves_to_the_next_candidate() -> None:
    run = run_card("gpo-6985", "00")
    assert run.purposes.count("GET PROCESSING OPTIONS") == 2
    assert run.purposes[1:7] == ["READ RECORD 1.1 (PSE)", "READ RECORD 1.2 (PSE)", "READ RECORD 1.3 (PSE)",
                                 "SELECT A000000333010102 (final)", "GET PROCESSING OPTIONS",
                                 "SELECT A000000333010101 (final)"]
    assert run.answers[run.purposes.index("GET PROCESSING OPTIONS")] == bytes.fromhex("6985")
    assert run.finished.receipt["aid"] == "A000000333010101"


def test_partial_selection_with_next_occurrence_builds_both_candidates() -> None:
    profile = replace(CATALOGUE["gpo-6985"], no_pse=True)
    config = config_with(AidConfig(bytes.fromhex("A0000003330101"), "UnionPay"))
    run = run_card("gpo-6985", "00", config=config, profile=profile)
    selects = [a.apdu for a in run.actions
               if isinstance(a, SendApdu) and a.purpose == "SELECT A0000003330101"]
    assert [s[3] for s in selects] == [0x00, 0x02, 0x02]  # first, next, next (→ 6A82)
    assert run.purposes[4:6] == ["SELECT A000000333010102 (final)", "GET PROCESSING OPTIONS"]  # priority 1
    assert run.finished.outcome is Outcome.APPROVED
    assert run.finished.receipt["aid"] == "A000000333010101"


def test_every_candidate_6985_is_not_accepted() -> None:
    credit = AidConfig(bytes.fromhex("A000000333010102"), "UnionPay Credit", partial_selection=False)
    config = config_with(credit)
    run = run_card("gpo-6985", "00", config=config)
    assert run.finished.outcome is Outcome.NOT_ACCEPTED


def test_no_common_application_terminates() -> None:
    mastercard_only = config_with(AidConfig(bytes.fromhex("A0000000041010"), "MC"))
    run = run_card("unionpay-debit", "00", config=mastercard_only)
    assert run.finished.outcome is Outcome.TERMINATED
    assert run.finished.reason == "no application on the card is supported by this terminal"
    assert run.finished.code is KernelReason.NO_APPLICATION


def test_corrupted_record_terminates() -> None:
    run = run_card("corrupt-record", "00")
    assert run.finished.outcome is Outcome.TERMINATED
    assert run.finished.reason.startswith("malformed data from the card: value of 70 is truncated")
    assert "6217" not in run.finished.reason


@pytest.mark.parametrize("status", ["cancelled", "timeout"])
def test_pin_cancelled_or_timed_out_terminates(status: str) -> None:
    run = run_card("unionpay-debit", "00", pin=status)
    assert run.finished.outcome is Outcome.TERMINATED
    assert run.finished.reason == f"PIN entry {status}"
    codes = {"cancelled": KernelReason.PIN_CANCELLED, "timeout": KernelReason.PIN_NOT_ENTERED}
    assert run.finished.code is codes[status]
    assert run.online is None


def test_pin_bypass_falls_through_to_signature() -> None:
    tx = transaction()
    card = CardApplet(CATALOGUE["unionpay-debit"])
    run = drive(tx, card.process, pin="bypassed", host=lambda a: ("00", b""))
    assert run.finished.receipt["cvm"] == "signature"
    assert tx.data[0x9F34] == bytes.fromhex("5E0300")  # signature, if supported, result unknown
    assert "PIN_NOT_ENTERED" in bits_set(TvrBit, tx.data[0x95])


def test_wrong_arpc_in_cdol2_makes_the_card_decline_after_approval() -> None:
    run = run_card("unionpay-debit", "00", tamper_arpc=True)
    assert run.finished.outcome is Outcome.DECLINED_AFTER_ONLINE_APPROVAL


def test_visa_issuer_authentication_by_external_authenticate() -> None:
    good = run_card("visa-credit", "00")
    assert "EXTERNAL AUTHENTICATE" in good.purposes and good.answers[good.purposes.index(
        "EXTERNAL AUTHENTICATE")] == bytes.fromhex("9000")
    bad = run_card("visa-credit", "00", tamper_arpc=True)
    assert bad.answers[bad.purposes.index("EXTERNAL AUTHENTICATE")] == bytes.fromhex("6300")
    assert bad.finished.outcome is Outcome.DECLINED_AFTER_ONLINE_APPROVAL
    assert "ISSUER_AUTHENTICATION_FAILED" in bits_set(TvrBit, bytes.fromhex(bad.finished.receipt["tvr"]))


def test_t0_card_needs_get_response_and_le_correction() -> None:
    run = run_card("mastercard-debit", "00")
    assert "GET RESPONSE for SELECT PSE" in run.purposes
    assert "READ RECORD 1.1 again with Le=52" in run.purposes
    assert "GET RESPONSE for GENERATE AC (first, ARQC)" in run.purposes
    assert run.finished.outcome is Outcome.APPROVED


def test_data_is_a_read_only_view() -> None:
    tx = transaction()
    run = drive(tx, CardApplet(CATALOGUE["unionpay-debit"]).process, host=lambda a: ("00", b""))
    assert run.finished.outcome is Outcome.APPROVED  # no 91 at all: this card accepts the host's word
    assert tx.data[0x9F02] == bytes.fromhex("000000012345") and tx.data[0x9F41] == bytes.fromhex("00000042")
    with pytest.raises(TypeError):
        tx.data[0x9F02] = b""  # type: ignore[index]


# --- API misuse --------------------------------------------------------------------------------------------


def test_answers_must_match_the_last_action() -> None:
    tx = transaction()
    with pytest.raises(LocalProtocolError):
        tx.on_response(b"\x90\x00")  # before start()
    assert isinstance(tx.start(), SendApdu)
    with pytest.raises(LocalProtocolError):
        tx.start()
    with pytest.raises(LocalProtocolError):
        tx.on_pin("entered")
    with pytest.raises(LocalProtocolError):
        tx.on_online_result("00")
    done = tx.on_response(bytes.fromhex("6A81"))
    assert isinstance(done, Finished) and done.outcome is Outcome.TERMINATED
    with pytest.raises(LocalProtocolError):
        tx.on_response(b"\x90\x00")


@pytest.mark.parametrize("kwargs", [{"amount_minor": -1}, {"amount_minor": 10**12},
                                    {"transaction_type": 0x1A},
                                    {"sequence_counter": 10**8}])
def test_bad_transaction_arguments(kwargs: dict[str, int]) -> None:
    args = {"amount_minor": 100, "transaction_type": 0x00, "sequence_counter": 1, **kwargs}
    with pytest.raises(LocalProtocolError):
        Transaction(CONFIG, when=WHEN, unpredictable_number=lambda: UN, **args)


def test_unpredictable_number_must_be_four_bytes() -> None:
    with pytest.raises(LocalProtocolError):
        Transaction(CONFIG, amount_minor=1, when=WHEN, unpredictable_number=lambda: b"\x01",
                    sequence_counter=1)


def test_pin_status_must_be_known() -> None:
    tx = transaction()
    card = CardApplet(CATALOGUE["unionpay-debit"])
    action = tx.start()
    while isinstance(action, SendApdu):
        action = tx.on_response(card.process(action.apdu))
    with pytest.raises(LocalProtocolError):
        tx.on_pin("ok")
