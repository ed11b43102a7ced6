"""The catalogue of simulated test cards: who they are, their keys, and how they misbehave.

Each ``SimCardProfile`` is personalised data plus behaviour flags read by ``sim.devices.card.CardApplet``. The
simulated acquirer verifies ARQCs with the same ``issuer_master_key`` (EMV option A → common session key →
AC), and the simulated PIN pad / issuer compare the clear ``pin``. Every PAN is Luhn-valid and unique, so
``BY_PAN`` finds a profile from an authorisation request. All keys and PINs here are test values.

=================================  ==========================================================================
key                                behaviour
=================================  ==========================================================================
``unionpay-debit``                 the happy card: PSE, PDOL, GPO format 2, online PIN, TC after approval
``visa-credit``                    no PDOL, GPO format 1, issuer authentication by EXTERNAL AUTHENTICATE
``mastercard-debit``               PIN 4321, talks T=0: ``61xx`` (GET RESPONSE) and ``6Cxx`` (re-send with Le)
``arpc-method-2``                  Visa, ARPC method 2 (ARPC || CSU) by EXTERNAL AUTHENTICATE
``card-declines``                  AAC at the first GENERATE AC (card risk management says no)
``card-declines-after-approval``   ARQC, then AAC at the second GENERATE AC even after host approval
``expired``                        expired in June 2024: the TVR bit meets IAC-Denial, AAC at the first AC
``not-yet-effective``              effective from 2049: the TVR bit meets IAC-Denial, AAC at the first AC
``no-pse``                         no ``1PAY.SYS.DDF01``: found only through the terminal's list of AIDs
``gpo-6985``                       a restricted credit application first; it answers GPO with ``6985``
``corrupt-record``                 record 1.2 is cut short: malformed TLV
``no-common-aid``                  a JCB-only card: no application in common with the terminal
``two-apps``                       debit (priority 2) and credit (priority 1): credit is selected
``two-apps-choice``                the same, offered to the customer on the PIN pad (cardholder selection)
``sda-good`` / ``dda-good`` /      offline data authentication that verifies (``card_oda``, ``pki``)
``cda-good``
``sda-tampered``                   static data changed after the issuer signed them: SDA fails
``dda-expired-issuer-cert``        issuer certificate expired 12/23: DDA fails
``cda-bad-issuer-cert``            issuer certificate corrupted: CDA fails
``mastercard-expired-capk``        Mastercard, DDA, issuer certificate under a CA key that expired 31 Dec 2024
                                   (the simulator's retired ``E1``, like Mastercard's live 05): DDA fails
``offline-approve``                CDA, no CVM, card lets a TC through: approves offline under the floor limit
``signature``                      CVM list starts with signature
``offline-pin``                    offline plaintext PIN (the PIN pad VERIFYs with the card)
``offline-enciphered-pin``         offline enciphered PIN under the ICC key (DDA card)
``pin-blocked``                    PIN try counter 0; IAC-Denial has "PIN try limit exceeded"
``issuer-script``                  the issuer adds a ``72`` script (PUT DATA with MAC) to approvals
=================================  ==========================================================================

>>> CATALOGUE["unionpay-debit"].aid.hex().upper(), luhn_valid(CATALOGUE["visa-credit"].pan)
('A000000333010101', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["SimCardProfile", "CATALOGUE", "BY_PAN", "luhn_valid", "DEFAULT_CARD"]

UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
UNIONPAY_CREDIT = bytes.fromhex("A000000333010102")
VISA = bytes.fromhex("A0000000031010")
MASTERCARD = bytes.fromhex("A0000000041010")

CNY = b"\x01\x56"
# PDOL as on PBOC cards: amount, currency, country, and 9F7A (VLP indicator) that our kernel sends as zeros.
UNIONPAY_PDOL = bytes.fromhex("9F0206" "5F2A02" "9F1A02" "9F7A01")


def luhn_valid(pan: str) -> bool:
    """ISO/IEC 7812-1 check digit."""
    if not pan.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(pan)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


@dataclass(frozen=True, kw_only=True)
class SimCardProfile:
    """One test card. Dates are YYMMDD; ``pin`` is the clear PIN for the simulated issuer and PIN pad.

    Only the PAN, expiry, PIN and issuer key are required, so a test can make a card of its own.
    """

    pan: str = field(repr=False)
    expiry: str = field(repr=False)
    pin: str = field(repr=False)
    issuer_master_key: bytes = field(repr=False)
    key: str = "custom"
    label: str = "Custom test card / 自定义测试卡"  # "English / 中文", for the simulator's card menu
    psn: str = "01"
    effective: str = "200101"
    aid: bytes = UNIONPAY_DEBIT
    app_label: str = "UnionPay Debit"
    priority: int = 1
    app_version: bytes = b"\x00\x30"
    cardholder_name: str = "TEST/CARDHOLDER"
    issuer_country: bytes = CNY
    currency: bytes = CNY
    service_code: str = "201"  # 2xx: chip card, normal authorisation
    pdol: bytes = UNIONPAY_PDOL
    response_format: int = 2  # GPO and GENERATE AC responses: 1 = template 80, 2 = template 77
    issuer_auth_by_external_authenticate: bool = False  # else 91 travels in CDOL2
    t0: bool = False
    no_pse: bool = False
    decline_first_ac: bool = False
    decline_second_ac: bool = False
    restricted_aid: bytes | None = None  # an extra application listed first that answers GPO with 6985
    other_aid: bytes | None = None  # a second working application (label "UnionPay Credit")
    other_priority: int = 1
    corrupt_record: bool = False
    oda: str = ""  # "", "sda", "dda" or "cda" (sim.devices.card_oda; keys from sim.backends.pki)
    oda_fault: str = ""  # "", "bad-issuer-cert", "expired-issuer-cert", "tampered-static", "expired-capk"
    offline_capable: bool = False  # card risk management lets a requested TC through at the first AC
    cvm_list: bytes = b""  # 8E; empty: online PIN, then signature, then no CVM
    arpc_method: int = 1  # 2: ARPC method 2 with a Card Status Update (needs EXTERNAL AUTHENTICATE)
    issuer_script: bool = False  # the issuer adds a 72 script (sim.backends.issuer) to every approval
    pin_tries: int = 3  # PIN try counter 9F17 at insertion; 0 = offline PIN blocked
    iac_denial: bytes = b""  # 9F0E; empty: 0060000000 (expired / not yet effective)
    pin_key: bool = False  # a separate ICC PIN encipherment key (9F2D/9F2E/9F2F) for enciphered offline PIN


def _unionpay(key: str, label: str, pan: str, imk: str, **changes: object) -> SimCardProfile:
    base = SimCardProfile(
        key=key, label=label, pan=pan, psn="01", expiry="301231", effective="250101", pin="1234",
        aid=UNIONPAY_DEBIT, app_label="UnionPay Debit", issuer_master_key=bytes.fromhex(imk))
    return replace(base, **changes)  # type: ignore[arg-type]


_CARDS = (
    _unionpay("unionpay-debit", "UnionPay debit (happy path) / 银联借记卡", "6212345678901232",
              "0123456789ABCDEFFEDCBA9876543210"),
    SimCardProfile(
        key="visa-credit", label="Visa credit / Visa 信用卡", pan="4761739001010010", psn="00",
        expiry="291130", effective="240101", pin="1234", aid=VISA, app_label="VISA CREDIT",
        issuer_master_key=bytes.fromhex("89ABCDEF0123456776543210FEDCBA98"), app_version=b"\x00\x8c",
        cardholder_name="VISA/TEST", pdol=b"", response_format=1, issuer_auth_by_external_authenticate=True),
    SimCardProfile(
        key="mastercard-debit", label="Mastercard debit, T=0 / 万事达借记卡 (T=0)", pan="5413330089010434",
        psn="02", expiry="281031", effective="230101", pin="4321", aid=MASTERCARD,
        app_label="Debit Mastercard",
        issuer_master_key=bytes.fromhex("FEDCBA98765432100123456789ABCDEF"), app_version=b"\x00\x02",
        cardholder_name="MASTERCARD/TEST", pdol=b"", response_format=1, t0=True),
    _unionpay("card-declines", "Declines at first AC / 首次 AC 拒绝", "6217000098765437",
              "11111111111111112222222222222222", decline_first_ac=True),
    _unionpay("card-declines-after-approval", "Declines after approval / 联机批准后卡片拒绝",
              "6217000055555557", "33333333333333334444444444444444", decline_second_ac=True),
    _unionpay("expired", "Expired card / 过期卡", "6217000000000014", "55555555555555556666666666666666",
              expiry="240630", effective="190701"),
    _unionpay("no-pse", "No PSE, AID list only / 无 PSE", "6217000022222224",
              "77777777777777778888888888888888", no_pse=True),
    _unionpay("gpo-6985", "Restricted app first (6985) / 受限应用 (6985)", "6217000033333333",
              "9999999999999999AAAAAAAAAAAAAAAA", priority=2, restricted_aid=UNIONPAY_CREDIT),
    _unionpay("corrupt-record", "Corrupted record / 记录损坏", "6217000044444442",
              "BBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCC", corrupt_record=True),
)

_OFFLINE_PIN = bytes.fromhex("00000000" "00000000" "4103" "1F03")  # plaintext offline PIN, else no CVM
_ENCIPHERED_PIN = bytes.fromhex("00000000" "00000000" "4403" "1F03")
_PIN_OR_FAIL = bytes.fromhex("00000000" "00000000" "0103")  # offline PIN, no fallback
_NO_CVM_ONLY = bytes.fromhex("00000000" "00000000" "1F00")
_SIGNATURE_FIRST = bytes.fromhex("00000000" "00000000" "5E03" "1F03")
JCB = bytes.fromhex("A0000000651010")

_CARDS += (
    _unionpay("sda-good", "SDA card / SDA 卡", "6217001100000011", "0A0A0A0A0A0A0A0A0B0B0B0B0B0B0B0B",
              oda="sda"),
    _unionpay("dda-good", "DDA card / DDA 卡", "6217001100000029", "0C0C0C0C0C0C0C0C0D0D0D0D0D0D0D0D",
              oda="dda"),
    _unionpay("cda-good", "CDA card / CDA 卡", "6217001100000037", "0E0E0E0E0E0E0E0E0F0F0F0F0F0F0F0F",
              oda="cda"),
    _unionpay("sda-tampered", "SDA, static data changed / 静态数据被篡改", "6217001100000045",
              "10101010101010101212121212121212", oda="sda", oda_fault="tampered-static"),
    _unionpay("dda-expired-issuer-cert", "DDA, issuer certificate expired / 发卡行证书过期", "6217001100000052",
              "13131313131313131414141414141414", oda="dda", oda_fault="expired-issuer-cert"),
    _unionpay("cda-bad-issuer-cert", "CDA, corrupted issuer certificate / 发卡行证书损坏", "6217001100000060",
              "15151515151515151616161616161616", oda="cda", oda_fault="bad-issuer-cert"),
    _unionpay("offline-approve", "Approves offline under the floor limit / 脱机批准", "6217001100000078",
              "17171717171717171818181818181818", oda="cda", offline_capable=True, cvm_list=_NO_CVM_ONLY),
    _unionpay("not-yet-effective", "Not yet effective / 未生效卡", "6217001100000086",
              "19191919191919191A1A1A1A1A1A1A1A", effective="490101", expiry="491231"),
    _unionpay("signature", "Signature CVM / 签名验证", "6217001100000094", "1B1B1B1B1B1B1B1B1C1C1C1C1C1C1C1C",
              cvm_list=_SIGNATURE_FIRST),
    _unionpay("no-common-aid", "JCB only: no common application / 无共同应用", "3540001100000016",
              "1D1D1D1D1D1D1D1D1E1E1E1E1E1E1E1E", aid=JCB, app_label="JCB Credit"),
    SimCardProfile(
        key="arpc-method-2", label="Visa, ARPC method 2 / ARPC 方法 2", pan="4761739001010028", psn="00",
        expiry="291130", effective="240101", pin="1234", aid=VISA, app_label="VISA DEBIT",
        issuer_master_key=bytes.fromhex("2121212121212121222222222222222F"), app_version=b"\x00\x8c",
        cardholder_name="VISA/METHOD2", pdol=b"", response_format=1, issuer_auth_by_external_authenticate=True,
        arpc_method=2),
    _unionpay("issuer-script", "Issuer script after approval / 发卡行脚本", "6217001100000110",
              "23232323232323232424242424242424", issuer_script=True),
    _unionpay("offline-pin", "Offline plaintext PIN (wrong, then right) / 脱机明文密码", "6217001100000128",
              "25252525252525252626262626262626", cvm_list=_OFFLINE_PIN),
    _unionpay("offline-enciphered-pin", "Offline enciphered PIN (DDA key) / 脱机密文密码", "6217001100000136",
              "27272727272727272828282828282828", oda="dda", cvm_list=_ENCIPHERED_PIN),
    _unionpay("pin-blocked", "Offline PIN blocked (try counter 0) / 密码已锁", "6217001100000144",
              "29292929292929292A2A2A2A2A2A2A2A", cvm_list=_PIN_OR_FAIL, pin_tries=0,
              iac_denial=bytes.fromhex("0060200000")),
    _unionpay("two-apps-choice", "Two applications, the customer chooses / 持卡人选择应用", "6217001100000151",
              "2B2B2B2B2B2B2B2B2C2C2C2C2C2C2C2C", priority=2, other_aid=UNIONPAY_CREDIT, other_priority=1),
    _unionpay("two-apps", "Two applications, credit first by priority / 双应用", "6217001100000102",
              "1F1F1F1F1F1F1F1F2020202020202020", priority=2, other_aid=UNIONPAY_CREDIT, other_priority=1),
    SimCardProfile(
        key="mastercard-expired-capk", label="Mastercard, DDA under an expired CA key / CA 公钥已过期",
        pan="5413330089010509", psn="01", expiry="301231", effective="250101", pin="1234", aid=MASTERCARD,
        app_label="Debit Mastercard", issuer_master_key=bytes.fromhex("2D2D2D2D2D2D2D2D2E2E2E2E2E2E2E2E"),
        app_version=b"\x00\x02", cardholder_name="MASTERCARD/OLDCA", pdol=b"", response_format=1, oda="dda",
        oda_fault="expired-capk"),
)

CATALOGUE: dict[str, SimCardProfile] = {card.key: card for card in _CARDS}
BY_PAN: dict[str, SimCardProfile] = {card.pan: card for card in _CARDS}
DEFAULT_CARD = "unionpay-debit"
