"""Replaying a tap transcript (``meta.interface`` = ``contactless``) through Entry Point and its kernels, as
``pos-emv replay`` does for chip transcripts.

A tap transcript's ``meta`` carries what Entry Point needs to send the same commands again (written by
``flows.contactless_payment`` through ``tap_meta``): ``amount_minor``, ``date`` (ISO), ``country`` and ``currency``
(hex), ``ifd_serial``, ``random`` (every value the terminal drew, in order: the unpredictable number first, then
relay resistance entropy), ``timings`` (the reader's µs for each timed exchange, in order) and ``combinations``
(AID, kernel ID and the ``ReaderLimits`` of each). ``host`` holds the host's code and field 55 as for a chip;
``pins`` is not used (online PIN is replayed as entered). A second presentation (issuer update) is replayed when
the transcript has exchanges left. Kernel 2's torn transaction log starts empty: a recovered tap diverges.

>>> meta = tap_meta(amount_minor=1, date="2026-12-03", country=b"\\x01\\x56", currency=b"\\x01\\x56",
...                 ifd_serial=b"T0000001", random=[b"\\x01\\x02\\x03\\x04"], timings=[], combinations=())
>>> meta["random"], meta["interface"]
(['01020304'], 'contactless')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from emv import kernel_c2, kernel_c3
from emv.actions import GoOnline, RequestOnlinePin, SendApdu
from emv.capk import Capk
from emv.contactless import Combination, ReaderLimits
from emv.entry_point import ContactlessAction, ContactlessFinished, EntryPoint, FieldOff, Kernel, PollCards, ShowUi
from emv.torn import TornLog
from emv.transcript import ReplayCard, Transcript
from pos_errors import PosError

__all__ = ["tap_meta", "replay_tap", "is_tap"]

_KERNELS: Mapping[int, Kernel] = {2: kernel_c2.run, 3: kernel_c3.run, 7: kernel_c3.run}
_MAX_STEPS = 500


def is_tap(transcript: Transcript) -> bool:
    return transcript.meta.get("interface") == "contactless"


def tap_meta(*, amount_minor: int, date: str, country: bytes, currency: bytes, ifd_serial: bytes,
             random: Sequence[bytes], timings: Sequence[int | None], combinations: Sequence[Combination]
             ) -> dict[str, Any]:
    """The transcript ``meta`` a tap needs to be replayed."""
    combos = []
    for combo in combinations:
        limits = {k: (v.hex().upper() if isinstance(v, bytes) else v) for k, v in asdict(combo.limits).items()}
        combos.append({"aid": combo.aid.hex().upper(), "kernel": combo.kernel_id, "limits": limits})
    return {"interface": "contactless", "amount_minor": amount_minor, "date": date, "country": country.hex(),
            "currency": currency.hex(), "ifd_serial": ifd_serial.decode("ascii", "replace"),
            "random": [r.hex() for r in random], "timings": list(timings), "combinations": combos}


def _combinations(meta: Mapping[str, Any]) -> tuple[Combination, ...]:
    out = []
    for entry in meta["combinations"]:
        limits = dict(entry["limits"])
        limits["ttq"] = bytes.fromhex(limits["ttq"])
        out.append(Combination(bytes.fromhex(entry["aid"]), int(entry["kernel"]), ReaderLimits(**limits)))
    return tuple(out)


def replay_tap(transcript: Transcript, capks: Mapping[tuple[bytes, int], Capk] | None = None,
               ) -> tuple[list[str], ContactlessFinished]:
    """Run Entry Point against the transcript; the trace lines and how it ended. Raises PosError when the
    transcript's meta cannot rebuild the reader's configuration."""
    meta = transcript.meta
    try:
        drawn = [bytes.fromhex(r) for r in meta.get("random", [])]
        amount = int(meta["amount_minor"])
        today = dt.date.fromisoformat(meta["date"])
        terminal = kernel_c3.terminal_data(
            amount_minor=amount, unpredictable_number=drawn.pop(0) if drawn else bytes(4), today=today,
            country=bytes.fromhex(meta["country"]), currency=bytes.fromhex(meta["currency"]),
            ifd_serial=str(meta.get("ifd_serial", "")).encode("ascii")[:8].ljust(8))
        combos = _combinations(meta)
        timings = list(meta.get("timings", []))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PosError(f"not a replayable tap transcript: {exc!r}") from exc

    def random_bytes(n: int) -> bytes:
        return drawn.pop(0) if drawn else bytes(n)

    ep = EntryPoint(combos, amount_minor=amount, kernels=_KERNELS, terminal=terminal, capks=capks or {},
                    today=today, torn=TornLog(), random_bytes=random_bytes)
    card, lines = ReplayCard(transcript), list[str]()
    action = ep.start()
    for _ in range(_MAX_STEPS):
        if isinstance(action, ContactlessFinished):
            break
        action = _step(ep, action, card, lines, transcript, timings)
    if not isinstance(action, ContactlessFinished):
        raise PosError("the replay did not finish")
    if card.divergences:
        lines.append(f"! Entry Point sent {len(card.divergences)} command(s) the transcript does not have")
    record = action.outcome.data_record
    lines.append(f"outcome: {action.outcome.status.value} — {action.outcome.reason} (CVM {action.outcome.cvm.value})")
    for name, tag in (("TVR", 0x95), ("TSI", 0x9B), ("CTQ", 0x9F6C), ("TTQ", 0x9F66)):
        if tag in record:
            lines.append(f"{name} {record[tag].hex().upper()}")
    return lines, action


def _step(ep: EntryPoint, action: ContactlessAction, card: ReplayCard, lines: list[str], transcript: Transcript,
          timings: list[Any]) -> ContactlessAction:
    if isinstance(action, PollCards):
        sent = sum(1 for line in lines if line.startswith("→"))
        present = not action.again or sent < len(transcript.exchanges)
        lines.append(f"reader: {'card presented again' if action.again else 'card in the field'}"
                     if present else "reader: the card was not presented again")
        return ep.on_cards(1 if present else 0)
    if isinstance(action, SendApdu):
        answer = card.process(action.apdu)
        lines.append(f"→ {action.purpose}: {action.apdu.hex().upper()}")
        lines.append(f"← {answer.hex().upper()}")
        if action.timed:
            return ep.on_response(answer, int(timings.pop(0)) if timings else None)
        return ep.on_response(answer)
    if isinstance(action, ShowUi):
        lines.append(f"UI: {action.request.message.name.lower()}")
        return ep.on_ack()
    if isinstance(action, FieldOff):
        return ep.on_ack()
    if isinstance(action, RequestOnlinePin):
        lines.append("PIN pad: online PIN (replayed as entered)")
        return ep.on_pin("entered")
    if isinstance(action, GoOnline):
        host = transcript.host or {}
        code = host.get("code")
        lines.append(f"host: {code or 'unreachable'}")
        return ep.on_online_result(code, bytes.fromhex(host.get("issuer_data", "")))
    raise PosError(f"unexpected Entry Point action {type(action).__name__}")

