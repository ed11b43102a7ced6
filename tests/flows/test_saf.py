"""The store-and-forward queue against a real SQLite journal and a fake host: one commit with the payment,
retry limit, expiry, restart persistence, cancellation after a reversal, and no clear PAN anywhere on disk."""

import datetime as dt

import pytest

from flows.ports import AuthRequest
from flows.saf import PanSealer, SafError, drain, offline_row
from flows.txn_state import path_to
from pos_errors import LinkError, LinkTimeout
from terminal.device_secret import sealing_key
from terminal.journal import Journal

PAN = "6217000000000078"
TID, MID = "T0000001", "M00000000000001"


class Host:
    def __init__(self, fail: int = 0, error: type[Exception] = LinkTimeout):
        self.fail, self.error, self.sent = fail, error, []

    def advise(self, request):
        self.sent.append((request.auth.stan, request.repeat, request.auth.pan, request.auth_code))
        if self.fail:
            self.fail -= 1
            raise self.error("silent")
        return "00"


def _offline_sale(j: Journal, sealer: PanSealer, order: str = "O1") -> tuple[int, int]:
    txn = j.begin(order_id=order, iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                  plan_name="10 GB", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    stan = j.next_stan()
    req = AuthRequest(stan, 3000, dt.datetime(2026, 12, 1, 10, 0, 0), pan=PAN, expiry_yymm="3012",
                      pan_sequence="01", icc_data=bytes.fromhex("9F2608AABBCCDDEEFF0011"))
    j.saf_offline_approved(txn, offline_row(req, sealer))
    return txn, stan


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "j.db")


@pytest.fixture
def sealer(journal):
    return PanSealer(sealing_key(b"device secret of the test" * 2, TID), TID)


def test_offline_approval_is_paid_and_queued_in_one_commit_without_a_clear_pan(journal, sealer, tmp_path):
    txn, stan = _offline_sale(journal, sealer)
    record = journal.get(txn)
    assert (record.state, record.stan, record.auth_code, record.masked_pan) == ("paid", stan, "Y1", "621700******0078")
    [row] = journal.saf_items()
    assert (row.status, row.stan, row.masked_pan, row.attempts) == ("queued", stan, "621700******0078", 0)
    assert PAN.encode() not in (tmp_path / "j.db").read_bytes() + (tmp_path / "j.db-wal").read_bytes()
    assert sealer.open(row.pan_sealed, stan) == PAN
    with pytest.raises(SafError):  # another terminal's key, or the row's STAN changed: it does not open
        PanSealer(sealing_key(b"device secret of the test" * 2, "T0000002"), "T0000002").open(row.pan_sealed, stan)
    with pytest.raises(SafError):
        sealer.open(row.pan_sealed, stan + 1)


def test_drain_sends_the_advice_once_and_marks_it_sent(journal, sealer):
    _txn, stan = _offline_sale(journal, sealer)
    host = Host()
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID)
    assert (report.sent, report.queued) == (1, 0)
    assert host.sent == [(stan, False, PAN, "Y1")]
    assert journal.saf_items() == [] and journal.saf_items(("sent",))[0].response_code == "00"
    assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID).sent == 0 and len(host.sent) == 1


def test_an_unanswered_advice_is_repeated_as_0221_and_stops_at_the_retry_limit(journal, sealer):
    _offline_sale(journal, sealer)
    host = Host(fail=99)
    for expected_tries in (1, 2):
        report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=3)
        assert report.queued == 1 and journal.saf_items()[0].attempts == expected_tries
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=3)
    assert [r.status for r in journal.saf_items(("failed",))] == ["failed"] and len(report.stopped) == 1
    assert [repeat for _s, repeat, _p, _a in host.sent] == [False, True, True]
    assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=3).sent == 0
    assert len(host.sent) == 3  # a stopped advice is never sent again


def test_a_refused_connection_uses_up_no_try(journal, sealer):
    _offline_sale(journal, sealer)
    host = Host(fail=5, error=LinkError)
    for _ in range(5):
        assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=2).queued == 1
    assert journal.saf_items()[0].attempts == 0
    assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=2).sent == 1


def test_an_advice_older_than_the_expiry_stops_unsent(journal, sealer):
    _offline_sale(journal, sealer)
    host = Host()
    later = dt.datetime.now() + dt.timedelta(seconds=3601)
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, expiry_s=3600, now=later)
    assert report.sent == 0 and host.sent == [] and journal.saf_items(("expired",))[0].status == "expired"


def test_the_queue_survives_a_restart_and_the_next_send_is_a_repeat(tmp_path):
    first = Journal(tmp_path / "j.db")
    key = sealing_key(bytes(range(32)), TID)  # from the device secret (terminal.device_secret), not a file here
    sealer = PanSealer(key, TID)
    _txn, stan = _offline_sale(first, sealer)
    drain(Host(fail=1), first, sealer, terminal_id=TID, merchant_id=MID)  # sent, no answer
    first.close()
    again = Journal(tmp_path / "j.db")  # a new process: the same device secret, the same queue
    host = Host()
    assert drain(host, again, PanSealer(key, TID), terminal_id=TID, merchant_id=MID).sent == 1
    assert host.sent == [(stan, True, PAN, "Y1")]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".safkey")]  # no sealing key beside it


@pytest.mark.parametrize("outcome", ["sent", "expired", "cancelled"])
def test_the_sealed_pan_is_erased_once_the_advice_is_done(journal, sealer, tmp_path, outcome):
    txn, _stan = _offline_sale(journal, sealer)
    [queued] = journal.saf_items()
    later = dt.datetime.now() + dt.timedelta(seconds=3601 if outcome == "expired" else 0)
    if outcome == "cancelled":
        for state in path_to("reversed", start="paid"):
            journal.update(txn, state)
    drain(Host(), journal, sealer, terminal_id=TID, merchant_id=MID, expiry_s=3600, now=later)
    [row] = journal.saf_items((outcome,))
    assert row.pan_sealed == b"" and queued.pan_sealed
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("j.db"))
    assert queued.pan_sealed not in on_disk  # nor in a free page or an old WAL frame


def test_an_advice_of_a_reversed_payment_is_cancelled_not_sent(journal, sealer):
    txn, _stan = _offline_sale(journal, sealer)
    for state in path_to("reversed", start="paid"):
        journal.update(txn, state)
    host = Host()
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID)
    assert host.sent == [] and [r.status for r in journal.saf_items(("cancelled",))] == ["cancelled"]
    assert len(report.stopped) == 1


class Answers:
    """A host that answers each advice with the next code of ``codes`` (then 00)."""

    def __init__(self, *codes: str) -> None:
        self.codes, self.sent = list(codes), []

    def advise(self, request):
        self.sent.append((request.auth.stan, request.repeat))
        return self.codes.pop(0) if self.codes else "00"


@pytest.mark.parametrize("code", ["96", "30", "05", "A0"])
def test_only_00_acknowledges_an_advice_any_other_answer_keeps_it_queued_with_its_sealed_pan(journal, sealer,
                                                                                            code):
    _txn, stan = _offline_sale(journal, sealer)
    host = Answers(*[code] * 8)
    report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=3)
    assert (report.sent, report.queued, report.stopped) == (0, 1, ())
    [row] = journal.saf_items()
    tries = 2 if code == "A0" else 1  # an A0 is sent once more at once, under renewed keys
    assert (row.status, row.attempts, row.message) == ("queued", tries, f"not acknowledged: the bank answered {code}")
    assert sealer.open(row.pan_sealed, stan) == PAN
    assert host.sent == [(stan, False), (stan, True)][:tries]
    while journal.saf_items():
        report = drain(host, journal, sealer, terminal_id=TID, merchant_id=MID, max_attempts=3)
    [failed] = journal.saf_items(("failed",))
    assert failed.attempts == 3 and failed.message == f"3 tries, last: not acknowledged: the bank answered {code}"
    assert sealer.open(failed.pan_sealed, stan) == PAN  # kept for the supervisor: the payment is not yet cleared
    assert [r.stan for r in report.stopped] == [stan]
    assert drain(Answers(), journal, sealer, terminal_id=TID, merchant_id=MID).sent == 0  # never sent again


def test_an_a0_then_00_is_acknowledged_by_the_second_send(journal, sealer):
    _txn, stan = _offline_sale(journal, sealer)
    host = Answers("A0")
    assert drain(host, journal, sealer, terminal_id=TID, merchant_id=MID).sent == 1
    assert host.sent == [(stan, False), (stan, True)]
    [row] = journal.saf_items(("sent",))
    assert (row.attempts, row.response_code, row.pan_sealed) == (2, "00", b"")


def test_an_advice_the_host_does_not_take_does_not_hold_up_the_next_one(journal, sealer):
    _offline_sale(journal, sealer, "O1")
    _txn, second = _offline_sale(journal, sealer, "O2")
    report = drain(Answers("96"), journal, sealer, terminal_id=TID, merchant_id=MID)
    assert (report.sent, report.queued) == (1, 1)
    assert [r.stan for r in journal.saf_items(("sent",))] == [second]
