"""Issuer script processing (EMV 4.4 Book 3 §10.10, Book 4 §6.3.9, Annex A5).

The host's field 55 may carry Issuer Script Templates: ``71`` run before the final GENERATE AC, ``72`` after
it. Each template holds an optional Issuer Script Identifier ``9F18`` (4 bytes) and Issuer Script Commands
``86`` (complete C-APDUs, usually with secure messaging). The terminal sends the commands in order; an answer
whose SW1 is not ``90``, ``62`` or ``63`` stops that script, sets TVR "script processing failed before/after
final GENERATE AC" (B5b6/B5b5), and the rest of that script is skipped. TSI "script processing performed"
(B1b3) is set once any script was attempted. The Issuer Script Results ``9F5B`` give 5 bytes per script: the
result in the high nibble of byte 1 (``0`` not performed, ``1`` failed, ``2`` successful), the sequence number
of the failing command in the low nibble (``0`` when successful, ``F`` past 15), then the script identifier
(zeros when absent).

>>> [(s.identifier.hex(), len(s.commands)) for s in parse_scripts(bytes.fromhex("7209" "9F180400000001" "8600"), 0x72)]
[('00000001', 1)]
"""

from __future__ import annotations

from dataclasses import dataclass

from emv import tlv
from emv.actions import Step, transmit
from emv.tvr import BitField, TsiBit, TvrBit
from pos_errors import RemoteProtocolError

__all__ = ["IssuerScript", "parse_scripts", "run_scripts", "MAX_SCRIPT_BYTES"]

MAX_SCRIPT_BYTES = 128  # a terminal may refuse longer scripts (Book 4 §6.3.9, common acquirer limit)
_CONTINUE_SW1 = (0x90, 0x62, 0x63)


@dataclass(frozen=True)
class IssuerScript:
    identifier: bytes
    commands: tuple[bytes, ...]
    too_long: bool = False


def parse_scripts(issuer_data: bytes, template: int) -> list[IssuerScript]:
    """The ``template`` (``71`` or ``72``) scripts in the host's TLV data; malformed data yield none."""
    try:
        objects = tlv.decode(issuer_data)
    except RemoteProtocolError:
        return []
    scripts = []
    for obj in objects:
        if obj.tag != template:
            continue
        identifier = tlv.first(obj.children, 0x9F18) or bytes(4)
        commands = tuple(c.value for c in obj.children if c.tag == 0x86)
        scripts.append(IssuerScript(identifier[:4].rjust(4, b"\x00"), commands,
                                    len(bytes(obj)) > MAX_SCRIPT_BYTES))
    return scripts


def run_scripts(scripts: list[IssuerScript], template: int, tvr: BitField[TvrBit],
                tsi: BitField[TsiBit]) -> Step[bytes]:
    """Send every script's commands; returns the Issuer Script Results to append to ``9F5B``."""
    failed_bit = (TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENERATE_AC if template == 0x71
                  else TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC)
    results = b""
    for script in scripts:
        tsi.set(TsiBit.SCRIPT_PROCESSING_PERFORMED)
        status = 0x20
        if script.too_long or not script.commands:
            status = 0x10
        for number, command in enumerate(script.commands if status == 0x20 else (), 1):
            response = yield from transmit(command, f"issuer script {script.identifier.hex().upper()} "
                                                    f"command {number}")
            if response.sw1 not in _CONTINUE_SW1:
                status = 0x10 | min(number, 0x0F)
                break
        if status & 0xF0 == 0x10:
            tvr.set(failed_bit)
        results += bytes([status]) + script.identifier
    return results
