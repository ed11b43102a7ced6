"""The chip flow when the reader answers an R-APDU shorter than SW1 SW2 (``drivers.card_reader`` raises
``RemoteProtocolError``): through the real reader driver on a pty against the simulated reader, a real SQLite
journal; the acquirer is ``tests.flows.fakes.FakeHost`` (it computes the card's real ARPC)."""

from __future__ import annotations

from pathlib import Path

from drivers.card_reader import CardReader
from emv.config import STANDARD_AIDS, TerminalConfig
from flows.card_payment import CardPaymentPorts, CardPaymentResult, CardPaymentSettings, PaymentStatus, pay_by_card
from flows.messages import say
from flows.ports import CancelToken
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.reader import ReaderSim
from terminal.journal import Journal
from tests.flows.fakes import FakeClock, FakeHost, FakePinPad

CARD = CATALOGUE["unionpay-debit"]  # online PIN, ARQC, TC at the second GENERATE AC


class ShortAnswer(CardApplet):
    """The card applet, except that the ``nth`` command with INS ``ins`` gets a 1-byte answer."""

    def __init__(self, ins: int, nth: int = 1) -> None:
        super().__init__(CARD)
        self.ins, self.nth, self.seen = ins, nth, 0

    def process(self, command_apdu: bytes) -> bytes:
        if command_apdu[1] == self.ins:
            self.seen += 1
            if self.seen == self.nth:
                return b"\x90"
        return super().process(command_apdu)


def _pay(tmp_path: Path, sim: ReaderSim, driver: CardReader, applet: CardApplet,
         ) -> tuple[CardPaymentResult, FakeHost, Journal, int]:
    journal = Journal(tmp_path / "j.db")
    txn = journal.begin(order_id="O1", iccid="89860112345678901237", msisdn="1064912345678", plan_id="P",
                        plan_name="p", amount_minor=3000, fee_minor=0, channel="card", cashier_id="01")
    host = FakeHost(CARD)
    ports = CardPaymentPorts(driver, FakePinPad(), host, journal, FakeClock(), lambda n: b"\x5a" * n)
    settings = CardPaymentSettings(TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001",
                                                  merchant_id="898440154110001"), "T0000001", "898440154110001",
                                   card_timeout_s=5.0)
    sim.insert(applet)
    result = pay_by_card(ports, settings, txn_id=txn, amount_minor=3000, progress=lambda _: None,
                         cancel=CancelToken())
    return result, host, journal, txn


def test_short_answer_before_the_host_charges_nothing(tmp_path: Path, reader: tuple[ReaderSim, CardReader]) -> None:
    sim, driver = reader
    result, host, journal, txn = _pay(tmp_path, sim, driver, ShortAnswer(0xA8))  # at GET PROCESSING OPTIONS
    assert result.status is PaymentStatus.FAILED and not result.approved
    assert host.authorized == [] and host.reversed_ == []
    assert journal.get(txn).state == "created" and journal.get(txn).reversal is None
    assert "nothing charged" in say(result.message, "en") and "未扣款" in say(result.message, "zh")
    assert "Card reader" in say(result.message, "en") and "读卡器" in say(result.message, "zh")


def test_short_answer_after_approval_reverses(tmp_path: Path, reader: tuple[ReaderSim, CardReader]) -> None:
    sim, driver = reader
    result, host, journal, txn = _pay(tmp_path, sim, driver, ShortAnswer(0xAE, nth=2))  # second GENERATE AC
    assert result.status is PaymentStatus.REVERSE and result.response_code == "00"
    assert result.request is not None and [r.stan for r in host.authorized] == [result.request.stan]
    row = journal.get(txn)
    assert (row.state, row.reversal) == ("card_removed_after_approval", "pending")  # the reversal is owed
    assert "reversing" in say(result.message, "en") and "正在冲正" in say(result.message, "zh")


class ForgedBatch(ReaderSim):
    """A reader whose TRANSMIT_BATCH answers one R-APDU more than it was sent commands (an answer to a command
    never sent): the driver refuses it (``DeviceError`` GARBLED)."""

    def _batch(self, data: bytes) -> bytes:
        answer = super()._batch(data)  # STATUS OK, COUNT, the R-APDUs: one more in front, COUNT raised
        return answer[:1] + bytes([answer[1] + 1, 2]) + b"\x6f\x00" + answer[2:]


def test_a_forged_batch_answer_charges_nothing(tmp_path: Path) -> None:
    sim = ForgedBatch()
    driver = CardReader(sim.start(), response_timeout_s=2.0)
    driver.open()
    try:
        result, host, journal, txn = _pay(tmp_path, sim, driver, CardApplet(CARD))
    finally:
        driver.close()
        sim.stop()
    assert sim.batches == 1  # the first batch (SELECT PSE and the directory read ahead) was refused
    assert result.status is PaymentStatus.FAILED and not result.approved
    assert host.authorized == [] and host.reversed_ == []
    assert journal.get(txn).state == "created" and journal.get(txn).reversal is None
    assert "nothing charged" in say(result.message, "en") and "未扣款" in say(result.message, "zh")
    assert "Card reader" in say(result.message, "en") and "读卡器" in say(result.message, "zh")
