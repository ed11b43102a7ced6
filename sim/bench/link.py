"""Card link benchmark: how close the reader link runs to the physical line, and what a noisy line costs.

* **Efficiency** = wall time / wire time of the APDU bytes of one full EMV contact transaction (SELECT to the
  second GENERATE AC, kernel driven live over ``CardReader`` ↔ ``ReaderSim`` on a paced pty). Wire time counts
  only the C-APDU and R-APDU bytes at 10 bits a byte; wall time is the time spent inside ``transmit``, so
  framing, ACKs, turn-around and thread wake-ups are what the ratio shows. Target ≤ 1.15. Both ends speak
  the latest link version (v4, the default; ``link_version`` says what was spoken), so this measures it;
  README "Card link" explains the floor. The transaction runs
  ``repeats`` times over one session and ``efficiency`` is the median (``efficiency_range`` the spread: on a
  shared machine one run measures the neighbours' load). Where the time went, per transaction (medians):
  ``line_s`` every byte that crossed the paced line either way (``framing_floor`` = line / APDU bytes, what
  the protocol alone costs, counted from the bytes that crossed, so it follows the version spoken;
  ``framing_bytes_per_apdu`` the same as bytes a command/answer pair), ``card_s`` the card applet's own
  work, and ``turnaround_ms`` what is left per APDU
  (thread wake-ups, link cores, the simulated reader's code, scheduling); ``exchanges`` how many times the
  terminal waited for the reader (10 APDUs in 6: the kernel names the commands that follow, ``SendApdu.then``,
  and the reader runs them in one TRANSMIT_BATCH — docs/protocols/card-reader.md) and
  ``turnaround_per_exchange_ms`` what is left per exchange. Nothing the reader or the card does is left out:
  the simulated line (``sim.devices.pty``) paces both directions to the wire's time, never sooner (its
  waits no longer oversleep: they stay awake for their last 150 µs), the card applet runs for real, and every
  thread wake-up of both ends is inside ``wall_s``.
* **Noise**: the same transaction ``runs`` times with 1e-3 byte errors (plus drops, duplicates) on both
  directions: completion rate (every APDU answered) and frames accepted with wrong content (an R-APDU the
  terminal got that differs from what the card sent, or a C-APDU the card got that the terminal did not send).
  Targets 100 % and 0.

>>> sorted(measure(bauds=(), runs=0))
['noise']
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from typing import Any

from drivers.card_reader import CardReader
from emv.actions import GoOnline, RequestOnlinePin, SendApdu
from emv.config import STANDARD_AIDS, TerminalConfig
from emv.kernel import Transaction
from flows.ports import CancelToken
from pos_errors import PosError
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE
from sim.devices.pty import LineFaults
from sim.devices.reader import ReaderSim

__all__ = ["measure"]

EFFICIENCY_TARGET = 1.15
NOISE = LineFaults(seed=1, error_rate=1e-3, drop_rate=1e-4, dup_rate=1e-4)
_CONFIG = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="898440154110001",
                         capks=SIM_TRUST)


class _RecordingCard:
    """The card, remembering what really crossed: C-APDUs received and R-APDUs sent."""

    def __init__(self, applet: CardApplet) -> None:
        self.applet, self.atr = applet, applet.atr
        self.received: list[bytes] = []
        self.sent: list[bytes] = []
        self.busy_s = 0.0  # time spent in the applet

    def process(self, apdu: bytes) -> bytes:
        started = time.perf_counter()
        self.received.append(bytes(apdu))
        self.sent.append(bytes(self.applet.process(apdu)))
        self.busy_s += time.perf_counter() - started
        return self.sent[-1]


def _transaction(reader: CardReader) -> tuple[list[bytes], list[bytes], float]:
    """One EMV transaction over the reader; returns C-APDUs sent, R-APDUs received, seconds in transmit."""
    kernel = Transaction(_CONFIG, amount_minor=3000, when=dt.datetime(2026, 12, 1, 10, 0),
                         unpredictable_number=lambda: b"\x12\x34\x56\x78", sequence_counter=1)
    commands: list[bytes] = []
    answers: list[bytes] = []
    in_transmit = 0.0
    action = kernel.start()
    while True:
        if isinstance(action, SendApdu):
            started = time.perf_counter()
            answer = reader.transmit(action.apdu, then=action.then)
            in_transmit += time.perf_counter() - started
            commands.append(action.apdu)
            answers.append(answer)
            action = kernel.on_response(answer)
        elif isinstance(action, RequestOnlinePin):
            action = kernel.on_pin("bypassed")
        elif isinstance(action, GoOnline):
            action = kernel.on_online_result(None)  # unable to go online: the second GENERATE AC still runs
        else:
            return commands, answers, in_transmit


def _session(baud: int | None, faults: LineFaults | None) -> tuple[ReaderSim, CardReader, _RecordingCard]:
    sim = ReaderSim(baud=baud, faults=faults)
    card = _RecordingCard(CardApplet(CATALOGUE["unionpay-debit"]))
    sim.insert(card)
    reader = CardReader(sim.start(), baud=baud or 115200, retries=5)
    reader.open()
    reader.wait_for_card(2.0, CancelToken())
    return sim, reader, card


def _efficiency(baud: int, repeats: int) -> dict[str, Any]:
    if repeats < 1:
        raise ValueError("repeats: at least one transaction per baud rate")
    sim, reader, card = _session(baud, None)
    walls, lines, cards, exchanges = [], [], [], []
    version = min(reader._link._core.peer_version, sim.core.peer_version)
    try:
        for _ in range(repeats):
            reader.power_on()
            line_before, card_before = sim.port.bytes_in + sim.port.bytes_out, card.busy_s
            counts_before = sim.apdus - sim.batched + sim.batches
            commands, answers, wall = _transaction(reader)
            exchanges.append(sim.apdus - sim.batched + sim.batches - counts_before)
            walls.append(wall)
            lines.append(sim.port.bytes_in + sim.port.bytes_out - line_before)
            cards.append(card.busy_s - card_before)
    finally:
        reader.close()
        sim.stop()
    apdu_bytes = sum(map(len, commands)) + sum(map(len, answers))
    wire, apdus = apdu_bytes * 10 / baud, len(commands)
    wall, line_s, card_s = statistics.median(walls), statistics.median(lines) * 10 / baud, statistics.median(cards)
    return {"apdus": apdus, "apdu_bytes": apdu_bytes, "wire_s": round(wire, 4), "wall_s": round(wall, 4),
            "efficiency": round(wall / wire, 3), "ratio_to_target": round(wall / wire / EFFICIENCY_TARGET, 2),
            "repeats": repeats, "efficiency_range": [round(min(walls) / wire, 3), round(max(walls) / wire, 3)],
            "line_s": round(line_s, 4), "framing_floor": round(line_s / wire, 3), "link_version": version,
            "framing_bytes_per_apdu": round((statistics.median(lines) - apdu_bytes) / apdus, 1),
            "card_s": round(card_s, 4),
            "turnaround_ms": round((wall - line_s - card_s) / apdus * 1e3, 3),
            "exchanges": statistics.median(exchanges),
            "turnaround_per_exchange_ms": round((wall - line_s - card_s) / statistics.median(exchanges) * 1e3, 3)}


def _noise(runs: int) -> dict[str, Any]:
    completed = wrong = retransmissions = 0
    for run in range(runs):
        faults = LineFaults(seed=NOISE.seed + run, error_rate=NOISE.error_rate, drop_rate=NOISE.drop_rate,
                            dup_rate=NOISE.dup_rate)
        sim, reader, card = _session(None, faults)
        try:
            reader.power_on()
            commands, answers, _ = _transaction(reader)
            completed += 1
            wrong += sum(a != b for a, b in zip(commands, card.received, strict=False))
            wrong += sum(a != b for a, b in zip(answers, card.sent, strict=False))
            wrong += abs(len(commands) - len(card.received))
        except PosError:
            pass
        finally:
            retransmissions += sim.stats.retransmissions + reader._link._core.stats.retransmissions
            reader.close()
            sim.stop()
    return {"runs": runs, "byte_error_rate": NOISE.error_rate,
            "completion_rate": round(completed / runs, 4) if runs else None, "completion_target": 1.0,
            "frames_with_wrong_content": wrong, "wrong_content_target": 0, "retransmissions": retransmissions}


def measure(bauds: tuple[int, ...] = (115200, 9600), runs: int = 20, repeats: int = 5) -> dict[str, Any]:
    """``runs`` noisy-line transactions; ``repeats`` clean ones per baud rate (their median is the figure)."""
    result: dict[str, Any] = {f"efficiency_{baud}": _efficiency(baud, repeats) for baud in bauds}
    result["noise"] = _noise(runs)
    return result


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
