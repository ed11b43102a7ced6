"""Record a simulated card's transaction as a transcript (``emv.transcript``), for ``pos-emv replay``.

``record`` runs the real kernel in memory against a catalogue card, the simulated issuer (``sim.backends.issuer``)
and a PIN pad that enters the card's PIN; the result is masked unless ``keep_pan``. Command line:
``python -m sim.runner.transcripts CARD_KEY OUT.json [--amount 3000] [--keep-pan]``.

>>> t = record("unionpay-debit")
>>> t.meta["masked"], t.host["code"], len(t.exchanges) > 8
(True, '00', True)
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence

from emv import tlv
from emv.actions import Finished, GoOnline, RequestOnlinePin, SendApdu, VerifyOfflinePin
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.kernel import Transaction
from emv.transcript import Recorder, Transcript, mask_transcript
from flows.ports import OfflinePinRequest
from sim.backends.issuer import response_icc_data
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.pinpad import offline_verify_apdu

__all__ = ["record"]

WHEN = dt.datetime(2026, 6, 1, 12, 0, 0)
UN = "1A2B3C4D"


def record(key: str, *, amount_minor: int = 3000, keep_pan: bool = False) -> Transcript:
    profile = CATALOGUE[key]
    card = CardApplet(profile, random_bytes=lambda n: b"\x42" * n)
    meta = {"card": key, "amount_minor": amount_minor, "when": WHEN.isoformat(), "unpredictable_number": UN,
            "sequence_counter": 1, "transaction_type": 0}
    recorder = Recorder(card.process, meta)
    config = TerminalConfig(aids=STANDARD_AIDS, capabilities=bytes.fromhex("E0F8C8"), capks=SIM_TRUST)
    tx = Transaction(config, amount_minor=amount_minor, when=WHEN, sequence_counter=1,
                     unpredictable_number=lambda: bytes.fromhex(UN))
    action = tx.start()
    while not isinstance(action, Finished):
        if isinstance(action, SendApdu):
            action = tx.on_response(recorder(action.apdu))
        elif isinstance(action, RequestOnlinePin):
            action = tx.on_pin("entered")
        elif isinstance(action, VerifyOfflinePin):
            request = OfflinePinRequest(action.enciphered, action.amount_minor, action.tries_left,
                                        action.icc_modulus, action.icc_exponent, action.challenge)
            command = offline_verify_apdu(request, profile.pin, lambda n: b"\x33" * n)
            sw = recorder(command)[-2:].hex().upper() if command else "6F00"
            recorder.transcript.exchanges.pop()  # the pad's VERIFY is not the terminal's exchange
            recorder.transcript.pins.append({"status": "entered", "sw": sw})
            action = tx.on_offline_pin("entered", int(sw, 16))
        elif isinstance(action, GoOnline):
            values = tlv.flatten(tlv.decode(action.icc_data))
            data = response_icc_data(profile, values[0x9F36], values[0x9F26], "00", action.pan_sequence)
            recorder.transcript.host = {"code": "00", "issuer_data": data.hex().upper()}
            action = tx.on_online_result("00", data)
    transcript = recorder.transcript
    transcript.meta["outcome"] = action.outcome.value
    if keep_pan:
        transcript.meta["warning"] = "contains the full PAN: do not share"
        return transcript
    return mask_transcript(transcript)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.runner.transcripts", description=__doc__)
    parser.add_argument("card", choices=sorted(CATALOGUE))
    parser.add_argument("out")
    parser.add_argument("--amount", type=int, default=3000)
    parser.add_argument("--keep-pan", action="store_true")
    args = parser.parse_args(argv)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(record(args.card, amount_minor=args.amount, keep_pan=args.keep_pan).to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
