"""Issuer scripts 71/72 with secure messaging and ARPC method 2, kernel against simulated card and issuer."""

from __future__ import annotations

from emv import tlv
from emv.scripts import parse_scripts
from emv.tvr import TvrBit, bits_set
from sim.backends import issuer as sim_issuer
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from tests.emv.helpers import CONFIG, drive, issuer, transaction


def _run(key: str, host):
    card = CardApplet(CATALOGUE[key])
    return card, drive(transaction(CONFIG), card.process, host=host)


def test_script_after_final_generate_ac_is_applied_by_the_card():
    card, result = _run("issuer-script", issuer(CATALOGUE["issuer-script"], "00"))
    assert result.finished.outcome.value == "approved"
    assert card.stored == {0x9F14: sim_issuer.SCRIPT_LCOL}
    assert result.finished.receipt["script_results"] == "2000000001"
    purposes = result.purposes
    assert purposes.index("issuer script 00000001 command 1") > max(
        i for i, p in enumerate(purposes) if p.startswith("GENERATE AC"))


def test_a_script_with_a_bad_mac_fails_and_sets_the_tvr_bit():
    profile = CATALOGUE["issuer-script"]

    def host(action):
        code, data = issuer(profile, "00")(action)
        objects = list(tlv.decode(data))
        command = objects[1].children[1].value
        bad = command[:-1] + bytes([command[-1] ^ 0xFF])
        objects[1] = tlv.Tlv.template(0x72, objects[1].children[0], tlv.Tlv(0x86, bad))
        return code, tlv.encode(objects)

    card, result = _run("issuer-script", host)
    assert card.stored == {}
    assert result.finished.receipt["script_results"] == "1100000001"  # failed at command 1
    assert "SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC" in bits_set(TvrBit, bytes.fromhex(result.finished.receipt["tvr"]))
    assert result.finished.outcome.value == "approved"  # a script failure does not undo the approval


def test_script_71_runs_before_the_final_generate_ac():
    profile = CATALOGUE["issuer-script"]

    def host(action):
        code, data = issuer(profile, "00")(action)
        objects = [tlv.Tlv.template(0x71, *o.children) if o.tag == 0x72 else o for o in tlv.decode(data)]
        return code, tlv.encode(objects)

    card, result = _run("issuer-script", host)
    purposes = result.purposes
    script_at = purposes.index("issuer script 00000001 command 1")
    assert script_at < [i for i, p in enumerate(purposes) if p.startswith("GENERATE AC")][-1]
    assert card.stored == {0x9F14: sim_issuer.SCRIPT_LCOL}


def test_arpc_method_2_verified_by_external_authenticate_and_a_forged_one_fails():
    profile = CATALOGUE["arpc-method-2"]
    _, good = _run("arpc-method-2", issuer(profile, "00"))
    assert good.finished.outcome.value == "approved"
    assert good.apdus("EXTERNAL AUTHENTICATE")[0][4] == 8  # ARPC(4) || CSU(4)
    _, forged = _run("arpc-method-2", issuer(profile, "00", tamper_arpc=True))
    assert "ISSUER_AUTHENTICATION_FAILED" in bits_set(TvrBit, bytes.fromhex(forged.finished.receipt["tvr"]))
    assert forged.finished.outcome.value == "declined_after_online_approval"


def test_malformed_or_empty_script_templates():
    assert parse_scripts(b"\x72\x05\x01", 0x72) == []
    assert parse_scripts(bytes.fromhex("7200"), 0x72)[0].commands == ()
