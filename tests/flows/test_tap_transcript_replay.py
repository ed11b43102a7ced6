"""A tap's transcript, recorded by the contactless flow over the real reader driver and pty, replays with
``pos-emv replay`` to the same outcome and the same commands (Entry Point, kernels, issuer update, relay
resistance timings and entropy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.card_reader import CardReader
from emv.capk import TEST_CAPKS
from emv.cli import main
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.contactless import Combination, ReaderLimits
from emv.tap_replay import replay_tap
from emv.transcript import Transcript
from flows.card_payment import CardPaymentPorts, CardPaymentSettings, PaymentStatus
from flows.contactless_payment import TapSettings, pay_by_tap
from flows.ports import CancelToken
from sim.devices.cards import CATALOGUE
from sim.devices.contactless_cards import CONTACTLESS_CATALOGUE, MASTERCARD_TAP, tap_applet
from sim.devices.reader import ReaderSim
from terminal.journal import Journal
from tests.flows.fakes import FakeClock, FakeHost, FakePinPad

LIMITS = ReaderLimits(contactless_limit=100000, floor_limit=0, cvm_required_limit=100000)
COMBOS = tuple(Combination(bytes.fromhex(rid), kernel, LIMITS)
               for rid, kernel in (("A000000333", 7), ("A000000003", 3), ("A000000004", 2)))


def _tap(tmp_path: Path, sim: ReaderSim, driver: CardReader, key: str) -> tuple[PaymentStatus, Transcript, str]:
    profile = CONTACTLESS_CATALOGUE[key].card if key in CONTACTLESS_CATALOGUE else MASTERCARD_TAP.get(
        key, CATALOGUE["mastercard-debit"])
    journal = Journal(tmp_path / "j.db")
    txn = journal.begin(order_id="O1", iccid="89860112345678901237", msisdn="1064912345678", plan_id="P",
                        plan_name="p", amount_minor=1700, fee_minor=0, channel="tap", cashier_id="01")
    saved: dict[str, str] = {}
    ports = CardPaymentPorts(driver, FakePinPad(), FakeHost(profile), journal, FakeClock(),
                             lambda n: bytes(range(7, 7 + n)))
    settings = CardPaymentSettings(TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001",
                                                  merchant_id="898440154110001"), "T0000001", "898440154110001",
                                   transcript_sink=saved.__setitem__)
    sim.tap(tap_applet(key))
    result = pay_by_tap(ports, driver, settings, TapSettings(COMBOS, TEST_CAPKS, tap_timeout_s=5.0),
                        txn_id=txn, amount_minor=1700, progress=lambda _: None, cancel=CancelToken())
    ((name, text),) = saved.items()
    return result.status, Transcript.from_json(text), name


@pytest.mark.parametrize("key", ["quickpass-update", "quickpass-debit"])
def test_tap_transcript_replays_to_the_recorded_outcome(tmp_path: Path, reader: tuple[ReaderSim, CardReader],
                                                         key: str) -> None:
    sim, driver = reader
    status, transcript, name = _tap(tmp_path, sim, driver, key)
    assert status is PaymentStatus.APPROVED and "-tap-" in name
    assert transcript.meta["masked"] and transcript.host is not None and transcript.host["code"] == "00"
    lines, done = replay_tap(transcript, TEST_CAPKS)
    assert done.outcome.status.value == transcript.meta["outcome"] == "approved"
    assert not any(line.startswith("!") for line in lines), lines
    sent = [line for line in lines if line.startswith("→")]
    assert len(sent) == len(transcript.exchanges)  # every recorded command sent again, in order
    if key == "quickpass-update":  # the second presentation is replayed too
        assert "→ EXTERNAL AUTHENTICATE" in "\n".join(sent) and "TSI 1400" in lines


def test_relay_resistance_entropy_and_timing_are_replayed(tmp_path: Path,
                                                          reader: tuple[ReaderSim, CardReader]) -> None:
    sim, driver = reader
    status, transcript, _ = _tap(tmp_path, sim, driver, "mastercard-rrp")
    assert status is PaymentStatus.APPROVED and len(transcript.meta["timings"]) == 1
    lines, _ = replay_tap(transcript, TEST_CAPKS)
    errd = lines.index("→ EXCHANGE RELAY RESISTANCE DATA: 80EA0000040708090A00")  # the recorded entropy
    assert lines[errd + 1] != "← 6F00"
    # where the tap recovered the ICC key (CDA) and the masked replay cannot, the TVR in CDOL1 differs: the
    # replay may diverge at GENERATE AC, never before (docs/emv.md, "pos-emv replay")
    diverged = [i for i, line in enumerate(lines) if line == "← 6F00"]
    assert all(lines[i - 1].startswith("→ GENERATE AC") for i in diverged), lines


def test_pos_emv_replay_prints_a_tap_with_the_pan_masked(tmp_path: Path, reader: tuple[ReaderSim, CardReader],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    sim, driver = reader
    _, transcript, _ = _tap(tmp_path, sim, driver, "quickpass-update")
    path = tmp_path / "tap.json"
    path.write_text(transcript.to_json(), encoding="utf-8")
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    pan = CATALOGUE["issuer-script"].pan
    assert "outcome: approved" in out and "UI: present_card_again" in out and pan not in out


def test_a_tap_transcript_without_its_reader_configuration_is_refused(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(Transcript(meta={"interface": "contactless", "amount_minor": 1}).to_json(), encoding="utf-8")
    assert main(["replay", str(path)]) == 2
    assert "not a replayable tap transcript" in capsys.readouterr().err
