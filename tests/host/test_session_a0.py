"""Master/session keys: an ``A0`` (key error) without a valid MAC is never an answer (drivers.host.session_link).

Through the real mutual-TLS link and the simulated acquirer: a forger replaces the host's approval by an
unMACed ``A0`` — the client signs on again and reports the outcome unknown, the flow reverses the approval journal
first (real SQLite journal); a reversal answered ``A0`` is repeated until acknowledged; an echo is sent once more
under the new keys. The authenticated case (an ``A0`` whose MAC verifies under our MAK) is the pure core's,
fed packed answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from drivers.host import messages as m
from drivers.host.dukpt_link import UnmacedKeyError
from drivers.host.session_link import after_key_error, session_exchange
from drivers.host.signon import KEY_ERROR_CODE, TerminalKeys, pack_with_mac
from flows.authorize import authorize_journaled
from flows.ports import BatchTotals, BatchUploadItem, ReversalRequest, SettlementRequest
from flows.reversal import reverse_payment
from flows.settlement import settle_batch
from flows.txn_state import TxnState
from pos_errors import RemoteProtocolError
from sim.backends.acquirer import AcquirerSim
from sim.backends.acquirer_security import AcquirerSecurity
from terminal import diagnostics
from terminal.journal import Journal
from tests.host.conftest import started
from tests.host.test_secure_link import TID, client, mtis, request

MID = "M00000000000001"


@pytest.fixture
def acquirer(security: AcquirerSecurity) -> Iterator[AcquirerSim]:
    yield from started(security)


@dataclasses.dataclass
class _Ports:
    host: object
    journal: Journal


def test_a_forged_a0_hiding_an_approval_is_reversed_journal_first(tmp_path, acquirer: AcquirerSim,
                                                                   security: AcquirerSecurity) -> None:
    journal = Journal(tmp_path / "journal.db")
    host = client(acquirer, security)
    host.sign_on()
    acquirer.forged_a0_purchases(1)  # the host approves; a forger turns its 0210 into an A0 without a MAC
    txn = journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=1250, fee_minor=0, channel="card", cashier_id="01")
    sent, answer, unknown = authorize_journaled(_Ports(host, journal), txn, request(journal.next_stan()))
    assert answer is None and unknown is not None and "without a valid MAC" in unknown.reason
    assert unknown.message.key == "pay.key_error_unverified"  # the cashier is told why, not "no answer"
    row = journal.get(txn)
    assert (row.state, row.reversal) == (TxnState.AUTH_UNKNOWN, "pending")  # never "nothing charged"
    assert [e.response_code for e in acquirer.ledger] == ["00"]  # the host did approve it
    assert mtis(acquirer)[-4:] == ["0200", "0210", "0800", "0810"]  # keys renewed at once
    assert reverse_payment(host, journal, journal.get(txn), terminal_id=TID, merchant_id=MID)
    assert journal.get(txn).state == TxnState.REVERSED
    assert acquirer.ledger[0].reversed and acquirer.approved_total_minor() == 0
    assert host.authorize(request(journal.next_stan())).approved  # the next sale, under the new keys
    journal.close()


def test_a_failed_sign_on_after_the_a0_still_leaves_the_outcome_unknown(acquirer: AcquirerSim,
                                                                        security: AcquirerSecurity) -> None:
    """A LinkError here would read "never sent": the approval would not be reversed."""
    host = client(acquirer, security)
    host.sign_on()
    acquirer.forged_a0_purchases(1)
    security.bad_kcv = True  # the new sign-on is refused (wrong check value)
    with pytest.raises(UnmacedKeyError):
        host.authorize(request(31))
    assert not host.signed_on and [e.response_code for e in acquirer.ledger] == ["00"]
    security.bad_kcv = False
    req = request(31)
    assert host.reverse(ReversalRequest(stan=32, original=req)) == "00"  # signs on by itself, then reverses
    assert acquirer.ledger[0].reversed


def test_a_reversal_answered_a0_is_repeated_until_acknowledged(tmp_path, acquirer: AcquirerSim,
                                                               security: AcquirerSecurity) -> None:
    journal = Journal(tmp_path / "journal.db")
    host = client(acquirer, security)
    txn = journal.begin(order_id="O2", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=1250, fee_minor=0, channel="card", cashier_id="01")
    _, answer, _ = authorize_journaled(_Ports(host, journal), txn, request(journal.next_stan()))
    assert answer is not None and answer.approved
    acquirer.a0_reversals(1)  # the first reversal's MAC "fails": A0 without a MAC, not processed
    assert reverse_payment(host, journal, journal.get(txn), terminal_id=TID, merchant_id=MID)
    assert [r.mti for r in acquirer.reversals] == ["0401"]  # the A0'd 0400 never reached the books; its repeat
    assert mtis(acquirer)[-6:] == ["0400", "0410", "0800", "0810", "0401", "0410"]
    assert journal.get(txn).state == TxnState.REVERSED and acquirer.ledger[0].reversed
    journal.close()


def test_an_echo_answered_a0_is_sent_again_under_new_keys(acquirer: AcquirerSim,
                                                          security: AcquirerSecurity) -> None:
    host = client(acquirer, security)
    host.sign_on()
    security.expire_keys(TID)
    assert host.echo()
    assert mtis(acquirer)[2:] == ["0800", "0810", "0800", "0810", "0800", "0810"]  # A0, sign-on, echo again


def test_an_echo_answered_by_forged_a0s_is_named_in_the_diagnostics(acquirer: AcquirerSim,
                                                                     security: AcquirerSecurity) -> None:
    host = client(acquirer, security)
    host.sign_on()
    security.forged_a0_echoes = 4  # an echo and its resend under the new keys, twice: every answer replaced
    assert not host.echo() and isinstance(host.echo_failure, UnmacedKeyError)
    assert mtis(acquirer)[2:] == ["0800", "0810", "0800", "0810", "0800", "0810"]  # echo, sign-on, echo again
    check = diagnostics._host(SimpleNamespace(host=host))  # type: ignore[arg-type]
    assert not check.ok and "without a valid MAC" in check.text("en") and "可能被伪造" in check.text("zh")
    assert host.echo() and host.echo_failure is None  # the forger gone: answered, MAC verified
    assert diagnostics._host(SimpleNamespace(host=host)).ok  # type: ignore[arg-type]


def _sent_stans(host: object) -> list[tuple[str, str]]:
    """Spy on the client's wire: (MTI, STAN) of every message it sends."""
    sent: list[tuple[str, str]] = []
    transport = host._transport  # type: ignore[attr-defined]
    real = transport.round_trip

    def spy(message: bytes, want: tuple[str, str, str]) -> tuple[m.Fields, bytes]:
        fields = m.unpack(message)
        sent.append((fields["t"], fields["11"]))
        return real(message, want)
    transport.round_trip = spy
    return sent


def test_a_batch_upload_whose_answer_is_a_forged_a0_goes_again_as_a_new_message(acquirer: AcquirerSim,
                                                                               security: AcquirerSecurity) -> None:
    """The host took the 0320 (a forger replaced its 0330): sent again under its old STAN, a strict host refuses it
    as a replay (94); the terminal sends it again as a new message, its own STAN, after the new sign-on."""
    host = client(acquirer, security)
    host.sign_on()
    sale = request(41)
    assert host.authorize(sale).approved
    acquirer.forget_last_approval()  # the host's totals now differ: the terminal uploads its batch
    totals = BatchTotals(1, 1, sale.amount_minor, 0, 0)
    assert host.settle(SettlementRequest(42, totals)) == "95"
    sent = _sent_stans(host)
    security.forged_a0_uploads = 1
    assert host.upload(BatchUploadItem(43, 41, sale.amount_minor, "", "", 1)) == "00"
    assert [s for s in sent if s[0] == "0320"] == [("0320", "000043"), ("0320", sent[-1][1])]
    assert sent[-1][1] != "000043" and sent[1][0] == "0800"  # the new sign-on, then the upload under a new STAN
    assert host.settle(SettlementRequest(44, totals, after_upload=True)) == "00"
    # what the same STAN would have met: the host already has 0320 stan 43
    assert host.upload(BatchUploadItem(43, 41, sale.amount_minor, "", "", 1)) == "94"


def test_the_batch_closes_after_an_upload_whose_0330_a_forger_replaced(tmp_path, acquirer: AcquirerSim,
                                                                        security: AcquirerSecurity) -> None:
    """End of day through the settlement flow, the real journal and the mutual-TLS link: totals differ, the batch
    is uploaded, the first 0330 is a forged A0 — the upload goes again as a new message and the batch closes."""
    journal = Journal(tmp_path / "journal.db")
    host = client(acquirer, security)
    txn = journal.begin(order_id="O3", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                        plan_name="p", amount_minor=1250, fee_minor=0, channel="card", cashier_id="01")
    _, answer, _ = authorize_journaled(_Ports(host, journal), txn, request(journal.next_stan()))
    assert answer is not None and answer.approved
    for state in (TxnState.PAID, TxnState.TOPUP_INTENDED, TxnState.COMPLETED):  # the card's TC, the top-up
        journal.update(txn, state)
    acquirer.forget_last_approval()
    security.forged_a0_uploads = 1
    sent = _sent_stans(host)
    result = settle_batch(host, journal, journal.batch_records(1), batch=1)
    uploads = [stan for mti, stan in sent if mti == "0320"]
    assert len(uploads) == 2 and uploads[0] != uploads[1]  # the second is a new message, not a replay (94)
    assert (result.status, result.uploaded, result.response_code) == ("closed", True, "00")
    assert mtis(acquirer)[-10:] == ["0500", "0510", "0320", "0330", "0800", "0810", "0320", "0330", "0500", "0510"]
    assert acquirer.settlements[-1][2:] == ("960000", "00")  # compared with the upload: balanced
    journal.close()


# --- the pure core: which A0 is authenticated --------------------------------------------------------------

KEYS = TerminalKeys(mak=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), pik_under_tmk=bytes(16),
                    pik_kcv=bytes(4))
OTHER_MAK = bytes.fromhex("1C1C1C1C1C1C1C1C0E0E0E0E0E0E0E0E")
PURCHASE = {"t": "0200", "3": "000000", "4": "000000001250", "11": "000041", "41": TID, "42": MID,
            "49": "156", "52": "00" * 8}


def _a0(request: m.Fields, mak: bytes | None) -> bytes:
    answer = {k: request[k] for k in ("3", "4", "11", "41", "42", "49")}
    answer.update({"t": m.response_mti(request["t"]), "39": KEY_ERROR_CODE})
    return m.pack(answer) if mak is None else pack_with_mac(answer, mak)


def _replying(raw: bytes):  # type: ignore[no-untyped-def]
    def round_trip(message: bytes, want: tuple[str, str, str]) -> tuple[m.Fields, bytes]:
        return m.unpack(raw), raw
    return round_trip


@pytest.mark.parametrize("mak", [None, OTHER_MAK], ids=["no MAC", "MAC under another key"])
def test_an_a0_without_a_valid_mac_is_no_answer(mak: bytes | None) -> None:
    with pytest.raises(UnmacedKeyError, match="outcome unknown"):
        session_exchange(PURCHASE, KEYS, _replying(_a0(PURCHASE, mak)))


@pytest.mark.parametrize("mti", ["0200", "0400", "0401", "0220", "0221"])
def test_an_unmaced_a0_to_money_renews_the_keys_and_is_raised_never_resent(mti: str) -> None:
    renewed, sent = [], []
    exc = UnmacedKeyError("A0", tag="39")
    with pytest.raises(UnmacedKeyError):
        after_key_error({**PURCHASE, "t": mti}, exc, lambda: renewed.append(1) or KEYS,  # type: ignore[func-returns-value]
                        lambda f, k: sent.append(f) or {})  # type: ignore[func-returns-value]
    assert renewed == [1] and sent == []


def test_an_authenticated_a0_to_a_pik_pin_purchase_is_its_answer_not_resent() -> None:
    answer = session_exchange(PURCHASE, KEYS, _replying(_a0(PURCHASE, KEYS.mak)))
    assert answer["39"] == KEY_ERROR_CODE
    sent: list[m.Fields] = []
    out = after_key_error(PURCHASE, answer, lambda: KEYS, lambda f, k: sent.append(f) or {})  # type: ignore[func-returns-value]
    assert out is answer and sent == []


def test_an_authenticated_a0_without_a_pin_block_is_sent_once_more() -> None:
    plain = {k: v for k, v in PURCHASE.items() if k != "52"}
    answer = session_exchange(plain, KEYS, _replying(_a0(plain, KEYS.mak)))
    approved = {**answer, "39": "00"}
    assert after_key_error(plain, answer, lambda: KEYS, lambda f, k: approved) is approved
    with pytest.raises(RemoteProtocolError, match="again after a new sign-on"):
        after_key_error(plain, answer, lambda: KEYS, lambda f, k: answer)
