"""terminal.diagnostics against fake devices: every fault becomes a line with what to do, never a crash."""

import datetime as dt
import re
from dataclasses import dataclass, field

from drivers.pinpad_codec import KeyStatus
from flows.ports import PrinterStatus
from pos_errors import DeviceGone, DeviceTimeout, LinkError
from terminal.diagnostics import KSN_LOW, faults, run_checks
from terminal.journal import Journal


@dataclass
class FakeDevices:
    """Only what the checks ask; each attribute is what the device answers (an exception is raised)."""

    reader: object = None
    pinpad_keys: object = field(default_factory=lambda: KeyStatus("aes", bytes(12), 50_000))
    printer_status: object = field(default_factory=PrinterStatus)
    host_echo: object = True
    carrier_health: object = True


class _Answer:
    def __init__(self, value):
        self.value = value

    def __call__(self):
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class FakeServices:
    def __init__(self, d: FakeDevices, journal: Journal):
        self.journal = journal
        self.reader = type("R", (), {"status": staticmethod(_Answer(d.reader))})()
        self.pinpad = type("P", (), {"key_status": staticmethod(_Answer(d.pinpad_keys))})()
        self.printer = type("Pr", (), {"status": staticmethod(_Answer(d.printer_status))})()
        self.host = type("H", (), {"echo": staticmethod(_Answer(d.host_echo))})()
        self.carrier = type("C", (), {"health": staticmethod(_Answer(d.carrier_health))})()


def _lines(devices, tmp_path, now=None, lang="en"):
    checks = run_checks(FakeServices(devices, Journal(tmp_path / "j.db")), now)
    return [c.text(lang) for c in checks], checks


def test_all_healthy(tmp_path):
    lines, checks = _lines(FakeDevices(), tmp_path)
    assert not faults(checks) and len(checks) == 9  # + the audit log's seal chain (issue 19)
    assert lines[1] == "PIN pad: OK (AES key: 0.0 % of its PINs left (50000))"  # of 2.4e9
    assert lines[-1] == "Audit log: OK" and re.fullmatch(r"Free disk: OK \(\d+ MB free\)", lines[-3])


def test_each_fault_says_what_to_do(tmp_path):
    devices = FakeDevices(reader=DeviceGone("/dev/ttyS1 vanished"), pinpad_keys=KeyStatus("aes", None, 0),
                          printer_status=PrinterStatus(online=False, paper_out=True),
                          host_echo=False, carrier_health=LinkError("refused"))
    lines, checks = _lines(devices, tmp_path)
    assert [c.name for c in faults(checks)] == ["dev.reader", "dev.pinpad", "dev.printer", "dev.host",
                                                "dev.carrier"]
    assert lines[:5] == [
        "Card reader: not answering → check the cable and power, then run diagnostics again",
        "PIN pad: no PIN key loaded → call a technician",
        "Printer: paper out → load a new paper roll",
        "Bank host: not answering → check the network; card sales wait until it answers",
        "Carrier platform: not answering → check the network; card sales wait until it answers",
    ]
    assert "打印机：缺纸 → 装入新纸卷" in _lines(devices, tmp_path, lang="zh")[0]


def test_key_nearly_used_up_cover_open_and_silent_pinpad(tmp_path):
    lines, _ = _lines(FakeDevices(pinpad_keys=KeyStatus("tdes", bytes(10), KSN_LOW - 1),
                                  printer_status=PrinterStatus(cover_open=True, online=False)), tmp_path)
    assert lines[1] == f"PIN pad: only {KSN_LOW - 1} PINs left on this key → call a technician"
    assert lines[2] == "Printer: cover open → close the printer cover"
    lines, _ = _lines(FakeDevices(pinpad_keys=DeviceTimeout("no ACK")), tmp_path)
    assert lines[1].startswith("PIN pad: not answering")


def test_clock_behind_the_last_transaction(tmp_path):
    journal = Journal(tmp_path / "j.db")
    journal.begin(order_id="O1", iccid="89860424000000000017", msisdn="1064900000001", plan_id="P",
                  plan_name="p", amount_minor=1, fee_minor=0, channel="card", cashier_id="01")
    services = FakeServices(FakeDevices(), journal)
    assert not faults(run_checks(services, dt.datetime.now()))
    [clock] = faults(run_checks(services, dt.datetime(2020, 1, 1, 8, 0)))
    assert clock.text("en") == ("Clock: clock reads 2020-01-01 08:00, before the last transaction → "
                                "set the date and time")
