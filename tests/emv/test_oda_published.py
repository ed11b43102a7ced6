"""Certificate recovery, SDA, DDA and CDA against PUBLISHED data with PUBLISHED test CA keys.

Source: the ODA test vectors of emv-tools by Dmitry Eremin-Solenikov, as kept in RfidResearchGroup/proxmark3
``client/src/emv/test/sda_test.c`` (Visa test CAPK A000000003/01, issuer certificate, remainder, SSAD and the
static data of a test card) and ``dda_test.c`` (Mastercard test CAPK A000000004/05, issuer and ICC
certificates, SDAD over the DDOL data ``00000000``) and ``cda_test.c`` (a CDA-signed GENERATE AC answer).
The CAPKs come from ``emv.capk.RETIRED_CAPKS`` (live keys, now expired: the vectors are real cards' data), whose
checksums are the published ones.
"""

from __future__ import annotations

import datetime as dt

import pytest

from emv import oda
from emv.capk import RETIRED_CAPKS
from pos_errors import OdaError

VISA_01 = RETIRED_CAPKS[(bytes.fromhex("A000000003"), 0x01)]
MC_05 = RETIRED_CAPKS[(bytes.fromhex("A000000004"), 0x05)]

SDA_ISSUER_CERT = bytes.fromhex(
    "3c5fead4dd7bca44f93e90c44f76ede54a3288ecdc78469fcb1225c03b2c04f2c2f412281a0822df14649230989fb149"
    "4070daf8c9534a7881960148616ace581788120d3506ace4cee564fb27ee53341c22f0b45b31873d05de545efe33bcd2"
    "9b2185d035a806ad08c6976f3505a19999930ca8a03efa321c486061f7dcec9f")
SDA_ISSUER_REM = bytes.fromhex("1ebca30f00ce5962a8c6e130544b82891b236c65de29317f364735dee63f6598975835d5")
SDA_SSAD = bytes.fromhex(
    "99a558b62b674aa5e7d2a57e5ef6a6f2258e5da052d05b54e5c115ff1cecf94aa2df8f39a01d71c619eb819da52ef381"
    "e84979586aea7855ffbef40aa3a71cd3b04cfdf270aec8158a2797f24fd613b748134661135cd290e45b04a8e0ccc711"
    "ae042f159e73c89c2a7e65a4c2fd1d6106024aa27130b0ecec0238f91659de96")
SDA_STATIC = bytes.fromhex(
    "5f24030812315a0842765500132345995f3401019f0702ff009f0d05d040aca8009f0e0500100000009f0f05d068bcf800"
    "5c00")
SDA_PAN = "4276550013234599"

DDA_ISSUER_CERT = bytes.fromhex(
    "1714284f763b8586ee6d319951f7e63fa25076e50dc9d3200ba998d3a052adba9ab69ac6ad6add3ce09f0278f4074ec4"
    "ee9b1d2268a3e953575e454e50cd860bf424c51c597712d2aa057089dd8673e51b1e1d7188034892077ac18a6ae23488"
    "bea9df3b1a83f2c0800cd7c5cdf2fde0496f7bc39fb4bf363299bfa637b2ec33c507e36821eec2075f0e420d38a1c9f3"
    "127261ba316c987674fadb20ea7feb75ee455d12146ea6f02e8b01ec2fa7a115")
DDA_ISSUER_REM = bytes.fromhex("6e63b7bc70abdd09341b34c03286ba9bd83ba7936c5b7798fb22c5e53ff240a26dbd6415")
DDA_ICC_CERT = bytes.fromhex(
    "a42fbeb156b98dcb0554da062adca5309a91f04fa2c7bd7102a8d73f16a3cfade8aadf4f3fe2a2125ccdd77c6b9f78b5"
    "b4371ce0805725b0f9c027af147d91e1ffdb201e9c170ce777053a172ad526dcafd33895e1a947305c5b167f2e7c6f99"
    "1581a652ee473154760c2ed774214e50dfecdd4cf294c974b89ebca25b5ab3c0beb50dfaf782afde1433d90ca2a89d65"
    "1e75d67ebc7c3e36f5a165ee6132612939c1ecd399e46074b996d93a88e01e0a")
DDA_SDAD = bytes.fromhex(
    "3d87f31056102d2512cfde30900627c1263a76d1daa821f50831e606c54544c258131eaebe874dcb1a28cf82d3ff9111"
    "8260bc91113711d3b289fa41be69c7a7b5c783e6f8f97fce13f08b13fa44183e3718cebf0c41473d2b0ff4de44b6a02d"
    "75adb6d4962393ffdf4e69026cdf38ff")
DDA_STATIC = bytes.fromhex(
    "5f25031405015f24031506305a0852858812543456535f3401018e0c00000000000000001e031f039f0702ff009f0d05"
    "bc50bc00009f0e0500000000009f0f05bc70bc98009f4a01825f280206438c219f02069f03069f1a0295055f2a029a03"
    "9c019f37049f35019f45029f4c089f34038d0c910a8a0295059f37049f4c08"
    "3900")
DDA_PAN = "5285881254345653"
TODAY = dt.date(2014, 6, 1)  # the published cards expire in 2015 (5F24 150630)


def test_issuer_key_recovered_from_published_visa_test_certificate() -> None:
    key = oda.recover_issuer_public_key(VISA_01, SDA_ISSUER_CERT, SDA_ISSUER_REM, b"\x03", pan=SDA_PAN)
    assert key.identifier == "427655"  # the BIN of the published card's PAN 4276 5500 1323 4599
    assert (key.hash_algorithm, key.key_algorithm, key.exponent) == (0x01, 0x01, b"\x03")
    assert len(key.modulus) == len(VISA_01.modulus) - 36 + len(SDA_ISSUER_REM)
    assert key.modulus.endswith(SDA_ISSUER_REM)
    assert (key.expiry, key.serial.hex().upper()) == ("1209", "0042B3")  # fields of the published certificate


def test_sda_over_published_static_data() -> None:
    key = oda.recover_issuer_public_key(VISA_01, SDA_ISSUER_CERT, SDA_ISSUER_REM, b"\x03", pan=SDA_PAN)
    dac = oda.verify_signed_static_data(key, SDA_SSAD, SDA_STATIC)
    assert dac.hex().upper() == "3132"  # the Data Authentication Code 9F45 inside the published SSAD
    with pytest.raises(OdaError, match="hash"):
        oda.verify_signed_static_data(key, SDA_SSAD, SDA_STATIC[:-1] + b"\x01")  # tampered static data


def test_dda_chain_from_published_mastercard_test_data() -> None:
    issuer = oda.recover_issuer_public_key(MC_05, DDA_ISSUER_CERT, DDA_ISSUER_REM, b"\x03", pan=DDA_PAN,
                                           today=TODAY)
    assert (issuer.identifier, issuer.expiry, issuer.serial.hex().upper(), len(issuer.modulus)) == (
        "528588", "1221", "006EE2", 176)
    icc = oda.recover_icc_public_key(issuer, DDA_ICC_CERT, b"", b"\x03", DDA_STATIC, pan=DDA_PAN, today=TODAY)
    assert icc.identifier == DDA_PAN and icc.exponent == b"\x03"
    assert (icc.expiry, len(icc.modulus)) == ("0615", 112)  # = 5F24 150630; 896 bits, BB-padded, no remainder
    idn = oda.verify_signed_dynamic_data(icc, DDA_SDAD, bytes(4))
    assert idn.hex().upper() == "7A33FB8C9546E1E7"  # the ICC Dynamic Number 9F4C inside the published SDAD
    with pytest.raises(OdaError, match="hash"):
        oda.verify_signed_dynamic_data(icc, DDA_SDAD, b"\x00\x00\x00\x01")  # other terminal data


@pytest.mark.parametrize(("change", "message"), [
    ({"pan": "5299999999999999"}, "does not match the PAN"),
    ({"today": dt.date(2031, 1, 1)}, "expired"),
    ({"remainder": DDA_ISSUER_REM[:-1]}, "hash"),
    ({"certificate": DDA_ISSUER_CERT[:-1]}, "bytes"),
    ({"flip": True}, "6A header|hash|format"),
])
def test_issuer_recovery_refuses_every_bad_input(change: dict[str, object], message: str) -> None:
    cert = DDA_ISSUER_CERT
    if change.get("flip"):
        cert = bytes([cert[0] ^ 0x01]) + cert[1:]
    cert = change.get("certificate", cert)  # type: ignore[assignment]
    with pytest.raises(OdaError, match=message):
        oda.recover_issuer_public_key(MC_05, cert, change.get("remainder", DDA_ISSUER_REM),  # type: ignore[arg-type]
                                      b"\x03", pan=change.get("pan", DDA_PAN),  # type: ignore[arg-type]
                                      today=change.get("today", TODAY))  # type: ignore[arg-type]


def test_revoked_issuer_certificate_is_refused() -> None:
    key = oda.recover_issuer_public_key(MC_05, DDA_ISSUER_CERT, DDA_ISSUER_REM, b"\x03")
    crl = {(MC_05.rid, MC_05.index, key.serial)}
    with pytest.raises(OdaError, match="revocation list"):
        oda.recover_issuer_public_key(MC_05, DDA_ISSUER_CERT, DDA_ISSUER_REM, b"\x03", revoked=crl)


def test_icc_certificate_refuses_other_static_data_and_pan() -> None:
    issuer = oda.recover_issuer_public_key(MC_05, DDA_ISSUER_CERT, DDA_ISSUER_REM, b"\x03")
    with pytest.raises(OdaError, match="hash"):
        oda.recover_icc_public_key(issuer, DDA_ICC_CERT, b"", b"\x03", DDA_STATIC[:-2] + b"\x19\x00")
    with pytest.raises(OdaError, match="PAN"):
        oda.recover_icc_public_key(issuer, DDA_ICC_CERT, b"", b"\x03", DDA_STATIC, pan="5285881254345661")


def test_errors_are_value_errors() -> None:
    assert issubclass(OdaError, ValueError)


# CDA: proxmark3 client/src/emv/test/cda_test.c (same Mastercard test CAPK 05 and card certificates as DDA):
# the signature of a GENERATE AC answer (TC, ATC 0010), over the unpredictable number 12345779, whose
# transaction data hash covers the CDOL1 data and the answer's objects except 9F4B.
CDA_SDAD = bytes.fromhex(
    "1c009fc48679157dbff45f65d33ff78d4fcbf0cf5ea4208d107ae95aa38c546d0e5a18b87403a12bd447a8bbfc1e49ce"
    "0b2e251389205703c9bb1a88cc79f1ddc2f9841eadf07ce07b62511ddc93df59f28f0e91f92332d29cdef2bccb100885"
    "0500ef3e470a4cb18cd91aa5c1a108f3")
CDA_UN = bytes.fromhex("12345779")
CDA_CDOL1_DATA = bytes.fromhex("000000000000000000000000064300000000000643140925501234577923000000000000000000001e0300")
CDA_RESPONSE_OBJECTS = bytes.fromhex("9f2701409f360200109f10120010904001220000000000000000000000ff")


def test_cda_signature_from_published_mastercard_test_data():
    issuer = oda.recover_issuer_public_key(MC_05, DDA_ISSUER_CERT, DDA_ISSUER_REM, b"\x03", pan=DDA_PAN)
    icc = oda.recover_icc_public_key(issuer, DDA_ICC_CERT, b"", b"\x03", DDA_STATIC, pan=DDA_PAN)
    digest = oda.transaction_data_hash(b"", CDA_CDOL1_DATA, None, CDA_RESPONSE_OBJECTS)
    result = oda.verify_cda_signature(icc, CDA_SDAD, CDA_UN, cid=0x40, transaction_hash=digest)
    assert result.cid == 0x40 and len(result.cryptogram) == 8 and len(result.icc_dynamic_number) == 8
    with pytest.raises(OdaError, match="transaction data hash"):
        oda.verify_cda_signature(icc, CDA_SDAD, CDA_UN, cid=0x40,
                                 transaction_hash=oda.transaction_data_hash(b"", CDA_CDOL1_DATA[:-1] + b"\x01",
                                                                            None, CDA_RESPONSE_OBJECTS))
    with pytest.raises(OdaError, match="CID"):
        oda.verify_cda_signature(icc, CDA_SDAD, CDA_UN, cid=0x80, transaction_hash=digest)
