"""The kernel's steps one by one: selection parsing and ordering, CVM processing, restrictions, risk
management, action analysis, configuration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from emv import cvm, selection
from emv.actions import RequestOnlinePin, Stop
from emv.apdu import CryptogramType
from emv.config import STANDARD_AIDS, AidConfig, TerminalConfig
from emv.tlv import Tlv
from emv.tvr import (
    BitField,
    TsiBit,
    TvrBit,
    bits_set,
    check_floor_limit,
    check_restrictions,
    decide,
    parse_date,
)
from pos_errors import ConfigError, RemoteProtocolError

# --- selection (Book 1 §12) ---------------------------------------------------------------------------------


def test_parse_fci_of_the_pse() -> None:
    fci = selection.parse_fci(bytes.fromhex("6F1C840E315041592E5359532E4444463031A50A8801015F2D047A68656E"))
    assert (fci.df_name, fci.sfi, fci.label, fci.pdol) == (b"1PAY.SYS.DDF01", 1, None, None)


@pytest.mark.parametrize("hex_", ["700384012A", "6F03A50100", ""])
def test_parse_fci_needs_6f_and_84(hex_: str) -> None:
    with pytest.raises(RemoteProtocolError):
        selection.parse_fci(bytes.fromhex(hex_))


def test_parse_directory_record() -> None:
    record = Tlv.template(
        0x70,
        Tlv.template(0x61, Tlv(0x4F, bytes.fromhex("A0000000031010")), Tlv(0x50, b"VISA"),
                     Tlv(0x87, b"\x01")),
        Tlv.template(0x61, Tlv(0x9D, b"1PAY.SYS.DDF02")),  # a DDF entry: not followed
        Tlv.template(0x61, Tlv(0x50, b"TEST"), Tlv(0x87, b"\x01")),  # no ADF name: skipped
        Tlv.template(0x61, Tlv(0x4F, bytes.fromhex("A0000000041010"))),  # no label, no priority
    )
    assert selection.parse_directory_record(bytes(record)) == [
        (bytes.fromhex("A0000000031010"), "VISA", 1), (bytes.fromhex("A0000000041010"), None, None)]


def test_directory_record_must_be_one_70_template() -> None:
    with pytest.raises(RemoteProtocolError):
        selection.parse_directory_record(bytes.fromhex("6F00"))


def test_match_aid_exact_then_partial() -> None:
    aids = (AidConfig(bytes.fromhex("A0000003330101"), "CUP", partial_selection=True),
            AidConfig(bytes.fromhex("A0000000031010"), "Visa", partial_selection=False))
    assert selection.match_aid(aids, bytes.fromhex("A000000333010101")) is aids[0]
    assert selection.match_aid(aids, bytes.fromhex("A0000000031010")) is aids[1]
    assert selection.match_aid(aids, bytes.fromhex("A000000003101001")) is None  # partial not allowed
    assert selection.match_aid(aids, bytes.fromhex("A0000000041010")) is None


def test_candidates_ordered_by_priority_without_confirmation() -> None:
    cfg = STANDARD_AIDS[0]
    found = [selection.Candidate(bytes([i]) * 5, cfg, f"app{i}", p)
             for i, p in enumerate([None, 0x02, 0x81, 0x01, 0x00, 0x0F])]
    assert [c.label for c in selection.order_candidates(found)] == ["app3", "app1", "app5", "app0", "app4"]


# --- cardholder verification (Book 3 §10.5) -----------------------------------------------------------------

CAPS = "E06800"  # online PIN, signature, no CVM


def walk(cvm_list: str | None, pin: str | None = None, *, caps: str = CAPS, amount: int = 1000,
         kind: int = 0x00) -> tuple[cvm.CvmOutcome, list[str], list[object]]:
    tvr, tsi = BitField(TvrBit, 5), BitField(TsiBit, 2)
    ctx = cvm.CvmContext(amount_minor=amount, transaction_type=kind, in_application_currency=True,
                         capabilities=bytes.fromhex(caps))
    steps = cvm.perform_cvm(bytes.fromhex(cvm_list) if cvm_list else None, ctx, "6217000012345670", tvr, tsi)
    asked: list[object] = []
    try:
        action = next(steps)
        while True:
            asked.append(action)
            action = steps.send(pin)
    except StopIteration as done:
        assert TsiBit.CARDHOLDER_VERIFICATION_PERFORMED in tsi
        return done.value, bits_set(TvrBit, bytes(tvr)), asked


XY = "00000000" "00000000"
CV_FAILED, NO_PIN_PAD = "CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL", "PIN_PAD_NOT_PRESENT_OR_NOT_WORKING"
# fmt: off
CVM_CASES = [
    # rules, PIN answer, caps, 9F34, method, TVR bits
    ("4203" "5E03" "1F03", "entered",  CAPS,     "420300", "online PIN", ["ONLINE_PIN_ENTERED"]),
    ("4203" "5E03" "1F03", "bypassed", CAPS,     "5E0300", "signature",  ["PIN_NOT_ENTERED"]),
    ("0203" "5E03",        "bypassed", CAPS,     "020301", "failed",     [CV_FAILED, "PIN_NOT_ENTERED"]),
    ("4203" "5E03" "1F03", None,       "E02800", "5E0300", "signature",  []),          # no online PIN: skip
    ("4203" "1F03",        None,       "E00800", "1F0302", "no CVM",     []),
    ("0000",               None,       CAPS,     "000001", "failed",     [CV_FAILED]),
    ("4100" "1F00",        None,       CAPS,     "1F0002", "no CVM",     [NO_PIN_PAD]),
    ("7D00" "1E00",        None,       CAPS,     "1E0000", "signature",  ["UNRECOGNISED_CVM"]),
    ("1E04" "1F05",        None,       CAPS,     "3F0001", "failed",     [CV_FAILED]),
    ("1E0A" "1F00",        None,       CAPS,     "1F0002", "no CVM",     []),  # unknown condition: skip
]
# fmt: on


@pytest.mark.parametrize(("rules", "pin", "caps", "results", "method", "tvr"), CVM_CASES)
def test_cvm_walk(rules: str, pin: str | None, caps: str, results: str, method: str, tvr: list[str]) -> None:
    outcome, bits, asked = walk(XY + rules, pin, caps=caps)
    assert (outcome.results.hex().upper(), outcome.method, bits) == (results, method, tvr)
    assert all(isinstance(a, RequestOnlinePin) and a.amount_minor == 1000 for a in asked)
    assert len(asked) == (1 if pin else 0)


@pytest.mark.parametrize(("x", "amount", "expected"), [(5000, 4999, "1E0600"), (5000, 5001, "1F0702")])
def test_amount_conditions(x: int, amount: int, expected: str) -> None:
    rules = f"{x:08X}" "00000000" "1E06" "1F07"
    outcome, _, _ = walk(rules, amount=amount)
    assert outcome.results.hex().upper() == expected


def test_missing_cvm_list_sets_icc_data_missing() -> None:
    outcome, bits, _ = walk(None)
    assert (outcome.results.hex().upper(), bits) == ("3F0000", ["ICC_DATA_MISSING"])


@pytest.mark.parametrize("status", ["cancelled", "timeout"])
def test_cancelled_pin_stops_the_transaction(status: str) -> None:
    with pytest.raises(Stop) as stop:
        walk(XY + "4203", status)
    assert stop.value.reason == f"PIN entry {status}"


@pytest.mark.parametrize("hex_", ["00000000", "00000000" "00000000" "42"])
def test_malformed_cvm_list(hex_: str) -> None:
    with pytest.raises(RemoteProtocolError):
        cvm.parse_cvm_list(bytes.fromhex(hex_))


# --- restrictions, risk management, action analysis (Book 3 §10.4, §10.6, §10.7) ----------------------------

TODAY = dt.date(2026, 5, 1)
CARD = {0x5F24: bytes.fromhex("301231"), 0x5F25: bytes.fromhex("250101"), 0x9F08: b"\x00\x30",
        0x9F07: b"\xff\x00", 0x5F28: b"\x01\x56"}


# fmt: off
@pytest.mark.parametrize(("changes", "expected"), [
    ({},                                            []),
    ({0x5F24: bytes.fromhex("260430")},             ["EXPIRED_APPLICATION"]),
    ({0x5F24: bytes.fromhex("260501")},             []),                       # expires today: still valid
    ({0x5F25: bytes.fromhex("260502")},             ["APPLICATION_NOT_YET_EFFECTIVE"]),
    ({0x9F08: b"\x00\x02"},                         ["DIFFERENT_APPLICATION_VERSIONS"]),
    ({0x9F07: b"\x00\x00"},                         ["SERVICE_NOT_ALLOWED"]),
    ({0x9F07: b"\x29\x00"},                         []),                       # domestic goods, not ATM
    ({0x9F07: b"\x29\x00", 0x5F28: b"\x08\x40"},    ["SERVICE_NOT_ALLOWED"]),  # international: not allowed
    ({0x9F07: b"\x28\x00"},                         ["SERVICE_NOT_ALLOWED"]),  # not valid at non-ATMs
])
# fmt: on
def test_processing_restrictions(changes: dict[int, bytes], expected: list[str]) -> None:
    tvr = BitField(TvrBit, 5)
    check_restrictions({**CARD, **changes}, today=TODAY, app_versions=(b"\x00\x30",),
                       country_code=b"\x01\x56", tvr=tvr)
    assert bits_set(TvrBit, bytes(tvr)) == expected


@pytest.mark.parametrize(("value", "date"), [("491231", dt.date(2049, 12, 31)),
                                             ("500101", dt.date(1950, 1, 1))])
def test_dates_use_the_50_year_window(value: str, date: dt.date) -> None:
    assert parse_date(bytes.fromhex(value), "5F24") == date


@pytest.mark.parametrize("value", ["301331", "3012", "3A1231"])
def test_bad_dates_are_remote_errors(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_date(bytes.fromhex(value if len(value) % 2 == 0 else value + "0"), "5F24")


@pytest.mark.parametrize(("amount", "limit", "set_"), [(0, 0, True), (999, 1000, False), (1000, 1000, True)])
def test_floor_limit(amount: int, limit: int, set_: bool) -> None:
    tvr = BitField(TvrBit, 5)
    check_floor_limit(amount, limit, tvr)
    assert (TvrBit.EXCEEDS_FLOOR_LIMIT in tvr) is set_


# fmt: off
@pytest.mark.parametrize(("tvr", "card", "online_capable", "expected"), [
    ("8000048000", {},                                    True,  CryptogramType.ARQC),  # no IAC-Online: FF
    ("8000048000", {0x9F0F: bytes(5), 0x9F0D: bytes(5)},  True,  CryptogramType.ARQC),  # TAC-Online matches
    ("0000000000", {0x9F0F: bytes(5)},                    True,  CryptogramType.TC),
    ("0040000000", {0x9F0E: bytes.fromhex("0040000000")}, True,  CryptogramType.AAC),   # IAC-Denial
    ("0010000000", {},                                    True,  CryptogramType.AAC),   # TAC-Denial
    ("8000000000", {0x9F0D: bytes(5)},                    False, CryptogramType.AAC),   # TAC-Default
    ("0000000010", {0x9F0D: bytes(5)},                    False, CryptogramType.TC),
])
# fmt: on
def test_terminal_action_analysis(tvr: str, card: dict[int, bytes], online_capable: bool,
                                  expected: CryptogramType) -> None:
    kind, _ = decide(bytes.fromhex(tvr), card, tac_denial=bytes.fromhex("0010000000"),
                     tac_online=bytes.fromhex("DC4004F800"), tac_default=bytes.fromhex("DC4000A800"),
                     online_capable=online_capable)
    assert kind is expected


def test_short_iac_is_a_remote_error() -> None:
    with pytest.raises(RemoteProtocolError):
        decide(bytes(5), {0x9F0E: b"\x00"}, tac_denial=bytes(5), tac_online=bytes(5), tac_default=bytes(5),
               online_capable=True)


# --- configuration ------------------------------------------------------------------------------------------


def test_scheme_defaults_fill_empty_fields() -> None:
    visa = AidConfig(bytes.fromhex("A0000000031010"), "Visa")
    assert (visa.app_versions[0], visa.tac_denial, visa.tac_online) == (
        b"\x00\x8c", bytes.fromhex("0010000000"), bytes.fromhex("DC4004F800"))
    assert AidConfig(bytes.fromhex("A0000009990101"), "Other").app_versions == ()
    assert TerminalConfig(aids=STANDARD_AIDS).online_capable


@pytest.mark.parametrize("build", [
    lambda: AidConfig(b"\xa0\x00", "short"),
    lambda: AidConfig(bytes.fromhex("A0000000031010"), "Visa", tac_online=b"\x00"),
    lambda: AidConfig(bytes.fromhex("A0000000031010"), "Visa", app_versions=(b"\x00",)),
    lambda: AidConfig(bytes.fromhex("A0000000031010"), "Visa", floor_limit_minor=-1),
    lambda: TerminalConfig(aids=()),
    lambda: TerminalConfig(aids=STANDARD_AIDS, terminal_id="T1"),
    lambda: TerminalConfig(aids=STANDARD_AIDS, capabilities=b"\xe0"),
])
def test_bad_configuration_names_the_field(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigError):
        build()
