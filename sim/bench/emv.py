"""EMV kernel benchmark for ``make bench``: CPU per transaction of the pure kernel (card time excluded) with and
without RSA offline data authentication, and the cost of the simulator's deterministic key generation. The same
for a tap (Entry Point + kernel 7 online, kernel 3 offline with fDDA, kernel 2 with CDA), next to the contact
kernel's, with its ratio to the 50 ms budget of a tap.

Measured, never asserted. Target: the kernel's share of a card payment stays under 15 ms of CPU (the same
budget ``sim.bench.suite`` gives a whole top-up), so ``kernel_ms_per_txn`` is reported with its ratio to it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from emv import kernel_c3, tlv
from emv.actions import Finished, GoOnline, RequestOnlinePin, SendApdu
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.contactless import Combination, ReaderLimits, Status
from emv.entry_point import ContactlessFinished, EntryPoint, FieldOff, PollCards, ShowUi
from emv.kernel import Transaction
from flows.contactless_payment import KERNELS
from sim.backends import pki
from sim.backends.issuer import response_icc_data
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.contactless_cards import tap_applet

__all__ = ["measure"]

KERNEL_TARGET_MS = 15.0
TAP_BUDGET_MS = 50.0  # a tap's terminal-side CPU budget (issue 20): Entry Point + kernel, card time excluded
_TAP_LIMITS = ReaderLimits(contactless_limit=100000, floor_limit=5000, cvm_required_limit=100000)
_TAP_COMBOS = tuple(Combination(bytes.fromhex(aid), kernel, _TAP_LIMITS)
                    for aid, kernel in (("A000000333", 7), ("A000000003", 3), ("A000000004", 2)))
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


def _tap_seconds(key: str, amount: int, runs: int) -> float:
    """Process CPU inside Entry Point + kernel per tap (the card's and the issuer's time subtracted)."""
    total = 0.0
    today = dt.date(2026, 6, 1)
    for _ in range(runs):
        card = tap_applet(key)
        outside = 0.0
        started = time.process_time()
        terminal = kernel_c3.terminal_data(amount_minor=amount, unpredictable_number=b"\x12\x34\x56\x78",
                                           today=today)
        ep = EntryPoint(_TAP_COMBOS, amount_minor=amount, kernels=KERNELS, terminal=terminal, capks=SIM_TRUST,
                        today=today)
        action = ep.start()
        while not isinstance(action, ContactlessFinished):
            if isinstance(action, PollCards):
                action = ep.on_cards(1)
            elif isinstance(action, SendApdu):
                t0 = time.process_time()
                answer = card.process(action.apdu)
                outside += time.process_time() - t0
                action = ep.on_response(answer)
            elif isinstance(action, ShowUi | FieldOff):
                action = ep.on_ack()
            elif isinstance(action, RequestOnlinePin):
                action = ep.on_pin("entered")
            elif isinstance(action, GoOnline):
                action = ep.on_online_result("00")
            else:
                raise TypeError(type(action).__name__)
        if action.outcome.status not in (Status.APPROVED,):
            raise RuntimeError(f"bench tap {key} ended {action.outcome.status.value}: {action.outcome.reason}")
        total += time.process_time() - started - outside
    return total / runs


def measure(runs: int = 20) -> dict[str, Any]:
    plain = _kernel_seconds("unionpay-debit", runs) * 1000
    cda = _kernel_seconds("cda-good", runs) * 1000
    dda = _kernel_seconds("dda-good", runs) * 1000
    started = time.process_time()
    pki.make_key(f"bench:{time.time_ns()}", pki.ICC_BITS)  # a fresh seed: no cache
    keygen = (time.process_time() - started) * 1000
    tap_online = _tap_seconds("quickpass-debit", 10000, runs) * 1000
    tap_fdda = _tap_seconds("paywave-offline", 2000, runs) * 1000
    tap_cda = _tap_seconds("mastercard-cda", 2000, runs) * 1000
    return {
        "tap_ms_per_txn_online_no_oda": round(tap_online, 3),
        "tap_ms_per_txn_offline_fdda": round(tap_fdda, 3),
        "tap_ms_per_txn_c2_cda": round(tap_cda, 3),
        "tap_ms_per_txn_worst": round(max(tap_online, tap_fdda, tap_cda), 3),
        "tap_budget_ms": TAP_BUDGET_MS,
        "tap_worst_ratio_to_budget": round(max(tap_online, tap_fdda, tap_cda) / TAP_BUDGET_MS, 3),
        "tap_fdda_vs_contact_dda": round(tap_fdda / dda, 3) if dda else None,
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
