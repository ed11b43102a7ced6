"""EMV kernel benchmark for ``make bench``: CPU per transaction of the pure kernel (card time excluded) with and
without RSA offline data authentication, and the cost of the simulator's deterministic key generation.

Measured, never asserted. Target: the kernel's share of a card payment stays under 15 ms of CPU (the same
budget ``sim.bench.suite`` gives a whole top-up), so ``kernel_ms_per_txn`` is reported with its ratio to it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from emv import tlv
from emv.actions import Finished, GoOnline, RequestOnlinePin, SendApdu
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.kernel import Transaction
from sim.backends import pki
from sim.backends.issuer import response_icc_data
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE

__all__ = ["measure"]

KERNEL_TARGET_MS = 15.0
_CONFIG = TerminalConfig(aids=STANDARD_AIDS, capks=SIM_TRUST)


def _kernel_seconds(key: str, runs: int) -> float:
    """Process CPU spent inside the kernel (card and issuer calls subtracted), per transaction."""
    profile = CATALOGUE[key]
    total = 0.0
    for n in range(runs):
        card = CardApplet(profile, atc=n)
        outside = 0.0
        started = time.process_time()
        tx = Transaction(_CONFIG, amount_minor=3000, when=dt.datetime(2026, 6, 1, 12), sequence_counter=n + 1,
                         unpredictable_number=lambda: b"\x12\x34\x56\x78")
        action = tx.start()
        while not isinstance(action, Finished):
            t0 = time.process_time()
            if isinstance(action, SendApdu):
                answer = card.process(action.apdu)
                outside += time.process_time() - t0
                action = tx.on_response(answer)
            elif isinstance(action, RequestOnlinePin):
                action = tx.on_pin("entered")
            elif isinstance(action, GoOnline):
                values = tlv.flatten(tlv.decode(action.icc_data))
                data = response_icc_data(profile, values[0x9F36], values[0x9F26], "00", action.pan_sequence)
                outside += time.process_time() - t0
                action = tx.on_online_result("00", data)
        total += time.process_time() - started - outside
    return total / runs


def measure(runs: int = 20) -> dict[str, Any]:
    plain = _kernel_seconds("unionpay-debit", runs) * 1000
    cda = _kernel_seconds("cda-good", runs) * 1000
    dda = _kernel_seconds("dda-good", runs) * 1000
    started = time.process_time()
    pki.make_key(f"bench:{time.time_ns()}", pki.ICC_BITS)  # a fresh seed: no cache
    keygen = (time.process_time() - started) * 1000
    return {
        "kernel_ms_per_txn_no_oda": round(plain, 3),
        "kernel_ms_per_txn_dda": round(dda, 3),
        "kernel_ms_per_txn_cda": round(cda, 3),
        "kernel_target_ms": KERNEL_TARGET_MS,
        "kernel_cda_ratio_to_target": round(cda / KERNEL_TARGET_MS, 3),
        "sim_icc_keygen_ms_768_bit": round(keygen, 1),
        "runs": runs,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
