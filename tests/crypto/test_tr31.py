"""TR-31 key block unwrap (emv.crypto.tr31): published examples byte for byte, psec's TR-31 as an oracle on
random keys, KBPKs and headers, and every kind of damage refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emv.crypto.pin import key_check_value
from emv.crypto.tr31 import KeyBlockError, derive_keys, parse_header, unwrap

psec_tr31 = pytest.importorskip("psec.tr31")
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

# ANSI TR-31:2018 Annex A examples (A.7.2.2 and A.7.3.2: version B; A.7.4: version D), with the KCV of the key
#  version, KBPK, key, KCV, key block
PUBLISHED = [
    ("B", "DD7515F2BFC17F85CE48F3CA25CB21F6", "3F419E1CB7079442AA37474C2EFBF8B8", "57C409",
     "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"),
    ("B", "1D22BF32387C600AD97F9B97A51311AC", "E8BC63E5479455E26577F715D587FE68", "9A4212",
     "B0104B0TX12S0100KS1800604B120F9292800000BB68BE8680A400D9191AD4ECE45B6E6C0D21C4738A52190E248719E24B433627"),
    ("D", "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6",
     "3F419E1CB7079442AA37474C2EFBF8B8", "08793E",
     "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34"),
]


@pytest.mark.parametrize(("version", "kbpk", "key", "kcv", "block"), PUBLISHED)
def test_published_examples(version: str, kbpk: str, key: str, kcv: str, block: str) -> None:
    got = unwrap(bytes.fromhex(kbpk), block)
    assert got.key == bytes.fromhex(key)
    assert key_check_value(got.key, "tdes" if got.header.algorithm == "T" else "aes") == bytes.fromhex(kcv)
    assert got.header.version == version and got.header.text == block[:len(got.header.text)]
    assert bytes.fromhex(key) not in repr(got).encode() and key not in repr(got).upper()


def test_published_header_fields_and_derived_keys() -> None:
    header = parse_header(PUBLISHED[1][4])
    assert (header.key_usage, header.algorithm, header.mode_of_use, header.key_version, header.exportability) == (
        "B0", "T", "X", "12", "S")
    assert header.block("KS") == "00604B120F9292800000" and header.block("IK") is None
    # TR-31:2018 A.7.4 intermediate value: the key block authentication key derived from the AES-256 KBPK
    _, kbak = derive_keys("D", bytes.fromhex(PUBLISHED[2][1]))
    assert kbak.hex().upper() == "4EF24317696213840451890756757E573E0673483888F9B7F9B7517827F95022"


_TDES_KBPK = st.sampled_from([16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
_AES_KBPK = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
_FIELDS = st.tuples(st.sampled_from(["B1", "P0", "K0", "B0"]), st.sampled_from("EXN"),
                    st.from_regex(r"\A[0-9]{2}\Z"), st.sampled_from("ENS"))
_OPTIONAL = st.sampled_from(["", "IK14" + "0123456789ABCDEF", "KS18" + "00604B120F9292800000"])


@settings(max_examples=60, deadline=None)
@given(version=st.sampled_from("BD"), data=st.data(), fields=_FIELDS, optional=_OPTIONAL)
def test_psec_wrapped_blocks_unwrap_to_the_same_key(version: str, data: st.DataObject,
                                                    fields: tuple[str, str, str, str], optional: str) -> None:
    kbpk = data.draw(_TDES_KBPK if version == "B" else _AES_KBPK)
    algorithm = "T" if version == "B" else "A"
    key = data.draw(st.sampled_from([16, 24] if version == "B" else [16, 24, 32]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)))
    usage, mode, key_version, export = fields
    header = f"{version}0000{usage}{algorithm}{mode}{key_version}{export}{'01' if optional else '00'}00{optional}"
    block = psec_tr31.wrap(kbpk, header, key)
    got = unwrap(kbpk, block)
    assert got.key == key
    oracle_header, oracle_key = psec_tr31.unwrap(kbpk, block)
    assert oracle_key == key
    assert (got.header.key_usage, got.header.algorithm, got.header.mode_of_use, got.header.key_version,
            got.header.exportability) == (oracle_header.key_usage, oracle_header.algorithm,
                                          oracle_header.mode_of_use, oracle_header.version_num,
                                          oracle_header.exportability)
    ours = {k: v for k, v in got.header.optional_blocks if k != "PB"}  # psec hides its pad block
    assert ours == {k: oracle_header.blocks[k] for k in oracle_header.blocks}


@settings(max_examples=60, deadline=None)
@given(which=st.sampled_from(range(len(PUBLISHED))), at=st.integers(0, 200), new=st.sampled_from("0123456789ABCDEF"))
def test_any_changed_character_is_refused(which: int, at: int, new: str) -> None:
    _, kbpk, _, _, block = PUBLISHED[which]
    at %= len(block)
    if block[at] == new:
        return
    damaged = block[:at] + new + block[at + 1:]
    with pytest.raises(KeyBlockError):
        unwrap(bytes.fromhex(kbpk), damaged)


@pytest.mark.parametrize(("kbpk", "block", "why"), [
    (PUBLISHED[2][1][:-2] + "00", PUBLISHED[2][4], "MAC does not verify"),  # wrong KBPK
    (PUBLISHED[2][1], PUBLISHED[2][4][:-2], "characters long"),  # truncated
    (PUBLISHED[2][1], "C" + PUBLISHED[2][4][1:], "only B .TDES. and D"),  # variant method refused
    ("89E88CF7931444F334BD7547FC3F380C", "A0072P0TE00E0000F5161ED902807AF26F1D62263644BD24192FDB3193C730301CEE8701",
     "version 'A' is refused"),
    (PUBLISHED[0][1] + "00112233", PUBLISHED[2][4], "KBPK is 16 or 24 or 32 bytes, not 20"),
    (PUBLISHED[2][1], "D0112P0AE00E0000" + "Z" * 96, "hexadecimal"),
    (PUBLISHED[2][1], "D0016P0AE00E0000", "no key data"),
    (PUBLISHED[2][1], "D0032P0AE00E0100KS0" + "0" * 13, "malformed"),
    ("00" * 32, PUBLISHED[2][4][:-1] + "\u00e9", "printable ASCII"),
])
def test_malformed_blocks_are_refused_clearly(kbpk: str, block: str, why: str) -> None:
    with pytest.raises(KeyBlockError, match=why):
        unwrap(bytes.fromhex(kbpk), block)


def _with_length(version: str, rest: str) -> str:
    """A block whose length field is right, so the parser goes on to the optional blocks, the MAC, the key."""
    return f"{version}{len(rest) + 5:04d}{rest}"


_BLOCKISH = st.one_of(
    st.text(max_size=120),
    st.builds(_with_length, st.sampled_from("BDAC"),
              st.builds(lambda head, tail: head + tail, st.sampled_from(["P0AE00E00", "B1AX00N01", "B1TX00N02"]),
                        st.text(alphabet="0123456789ABCDEFKSIPB", max_size=120))),
)


@settings(max_examples=300, deadline=None)
@given(block=_BLOCKISH)
def test_anything_else_raises_only_key_block_error(block: str) -> None:
    for call in (lambda: parse_header(block), lambda: unwrap(bytes(32), block)):
        try:
            call()
        except KeyBlockError:
            pass
