"""Transcripts: record a simulated card session, mask the PAN, replay it as a card; the pos-emv CLI."""

from __future__ import annotations

import pytest

from emv.cli import main, replay
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.transcript import ReplayCard, Transcript
from pos_errors import RemoteProtocolError
from sim.backends.pki import SIM_TRUST
from sim.devices.cards import CATALOGUE
from sim.runner.transcripts import record

SIM_CONFIG = TerminalConfig(aids=STANDARD_AIDS, capabilities=bytes.fromhex("E0F8C8"), capks=SIM_TRUST)


@pytest.mark.parametrize("key", ["unionpay-debit", "visa-credit", "mastercard-debit", "card-declines",
                                 "issuer-script", "offline-pin", "signature"])
def test_masked_transcript_replays_to_the_recorded_outcome(key):
    transcript = Transcript.from_json(record(key).to_json())
    text = transcript.to_json()
    pan = CATALOGUE[key].pan
    assert pan not in text and pan[:6] in text  # first 6 kept, the rest masked
    lines, finished = replay(transcript)
    assert finished.outcome.value == transcript.meta["outcome"]
    assert not any(line.startswith("!") for line in lines)


def test_oda_needs_the_real_pan_so_only_an_unmasked_transcript_replays_cda():
    kept = record("cda-good", keep_pan=True)
    assert "warning" in kept.meta
    _, finished = replay(kept, SIM_CONFIG)  # the simulator CA is a test key: trusted only when given
    assert finished.receipt["oda"] == "CDA"
    assert replay(kept)[1].receipt["oda"] == "CDA failed"  # the default trusts live keys only
    _, masked = replay(record("cda-good"), SIM_CONFIG)
    assert masked.receipt["oda"] == "CDA failed"


def test_a_record_too_damaged_to_decode_still_has_its_pan_masked():
    """Found by the leak scan (tests/scenarios/test_leak_scan.py): the corrupt-record card's transcript kept the
    PAN and track 2 in clear, because the PAN was looked for only in records that decode."""
    text = record("corrupt-record").to_json()
    pan = CATALOGUE["corrupt-record"].pan
    assert pan not in text and pan.lower() not in text and pan[:6] in text


def test_replay_card_reports_a_divergence():
    card = ReplayCard(Transcript(exchanges=[(b"\x00\xa4", b"\x90\x00")]))
    assert card.process(b"\x00\xb2") == b"\x6f\x00" and card.divergences == [1]


@pytest.mark.parametrize("text", ["", "{}", '{"version": 2}', '{"version": 1, "exchanges": [{"c": "zz"}]}'])
def test_bad_transcripts_are_value_errors(text):
    with pytest.raises(RemoteProtocolError):
        Transcript.from_json(text)


def test_cli_decode_in_words(capsys):
    assert main(["decode", "77 0B 9F2701 80 95 05 8000048000"]) == 0
    out = capsys.readouterr().out
    assert "Cryptogram Information Data" in out and "ARQC (go online)" in out and "exceeds floor limit" in out
    assert main(["decode", "--tag", "9F34", "1F0302"]) == 0
    assert "no CVM required" in capsys.readouterr().out
    assert main(["decode", "--tag", "82", "3900"]) == 0
    assert "cda supported" in capsys.readouterr().out.lower()


def test_cli_refuses_garbage_with_status_2(capsys, tmp_path):
    assert main(["decode", "9F"]) == 2
    assert main(["decode", "xyz"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("not json", encoding="utf-8")
    assert main(["replay", str(bad)]) == 2


def test_cli_replay_warns_about_a_full_pan(capsys, tmp_path):
    path = tmp_path / "t.json"
    path.write_text(record("unionpay-debit", keep_pan=True).to_json(), encoding="utf-8")
    assert main(["replay", str(path)]) == 0
    captured = capsys.readouterr()
    assert "full PAN" in captured.err and "outcome: approved" in captured.out
    assert CATALOGUE["unionpay-debit"].pan not in captured.out + captured.err


def test_a_live_terminal_session_is_recorded_masked_and_replays(tmp_path):
    """Through the real reader and PIN pad ptys: [emv] transcripts_dir makes the terminal save the session."""
    from pathlib import Path

    from sim.runner.scenario import load_scenario, run_scenario

    scenario = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "cards" / "issuer_script.toml")
    scenario = type(scenario)(scenario.name, scenario.path, {"emv": {"transcripts_dir": str(tmp_path)}},
                              scenario.steps)
    assert run_scenario(scenario).passed
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 1
    text = files[0].read_text(encoding="utf-8")
    card = CATALOGUE["issuer-script"]
    assert card.pan not in text and f"D{card.expiry[:4]}" not in text  # nor track 2's remainder
    assert card.cardholder_name.encode().hex().upper() not in text
    transcript = Transcript.from_json(text)
    assert transcript.meta["masked"] and transcript.host["code"] == "00"
    lines, finished = replay(transcript)
    assert finished.outcome.value == "approved" and finished.receipt["script_results"] == "2000000001"
    assert not any(line.startswith("!") for line in lines)


def test_a_tap_is_recorded_masked_including_the_try_again(tmp_path):
    """A tap pulled away too early, then tapped again: two PAN-masked transcripts through the real reader pty."""
    from pathlib import Path

    from sim.runner.scenario import load_scenario, run_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / "contactless" / "removed_too_early.toml"
    scenario = load_scenario(path)
    scenario = type(scenario)(scenario.name, scenario.path, {"emv": {"transcripts_dir": str(tmp_path)}},
                              scenario.steps)
    result = run_scenario(scenario)
    assert result.passed, result.message
    files = sorted(tmp_path.glob("*-tap-*.json"))
    assert len(files) == 2
    first, second = (Transcript.from_json(f.read_text(encoding="utf-8")) for f in files)
    assert (first.meta["outcome"], len(first.exchanges)) == ("card removed", 2)
    assert second.meta["outcome"] == "approved" and second.meta["kernel"] == 7
    assert second.meta["masked"] and all(CATALOGUE["unionpay-debit"].pan not in f.read_text() for f in files)
    assert all(f"D{CATALOGUE['unionpay-debit'].expiry[:4]}" not in f.read_text() for f in files)  # track 2 blanked
