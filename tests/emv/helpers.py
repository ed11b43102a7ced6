"""Drive the kernel against a card in memory, playing PIN pad and issuer with the card's real keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from emv import tlv
from emv.actions import Action, Finished, GoOnline, RequestOnlinePin, SendApdu, VerifyOfflinePin
from emv.config import STANDARD_AIDS, AidConfig, TerminalConfig
from emv.crypto import arqc
from emv.kernel import Transaction
from flows.ports import OfflinePinRequest
from sim.backends.issuer import response_icc_data
from sim.backends.pki import SIM_TRUST
from sim.devices.card import CardApplet
from sim.devices.cards import CATALOGUE, SimCardProfile
from sim.devices.pinpad import offline_verify_apdu

WHEN = dt.datetime(2026, 5, 1, 12, 30, 15)
UN = bytes.fromhex("A1B2C3D4")
CONFIG = TerminalConfig(aids=STANDARD_AIDS, terminal_id="T0000001", merchant_id="898440154110001",
                        capks=SIM_TRUST)


def transaction(config: TerminalConfig = CONFIG, amount_minor: int = 12345) -> Transaction:
    return Transaction(config, amount_minor=amount_minor, when=WHEN, unpredictable_number=lambda: UN,
                       sequence_counter=42)


def config_with(*aids: AidConfig) -> TerminalConfig:
    return TerminalConfig(aids=aids, terminal_id="T0000001", merchant_id="898440154110001", capks=SIM_TRUST)


def session_key(profile: SimCardProfile, values: dict[int, bytes], psn: str | None) -> bytes:
    """What the issuer does: option A master key from PAN + PSN, common session key from the ATC."""
    icc_mk = arqc.derive_icc_master_key(profile.issuer_master_key, profile.pan, psn or "00")
    return arqc.derive_session_key(icc_mk, values[0x9F36])


def issuer(profile: SimCardProfile, code: str | None, *, tamper_arpc: bool = False) -> Callable[
        [GoOnline], tuple[str | None, bytes]]:
    """A host that answers ``code`` with a correct ARPC (or a flipped one) in tag 91."""

    def answer(action: GoOnline) -> tuple[str | None, bytes]:
        if code is None:
            return None, b""
        values = tlv.flatten(tlv.decode(action.icc_data))
        data = response_icc_data(profile, values[0x9F36], values[0x9F26], code, action.pan_sequence)
        if tamper_arpc:  # data starts 91 len ARPC...: flip the first ARPC byte
            data = data[:2] + bytes([data[2] ^ 0x01]) + data[3:]
        return code, data

    return answer


@dataclass
class Run:
    finished: Finished
    actions: list[Action] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    online: GoOnline | None = None

    @property
    def purposes(self) -> list[str]:
        return [a.purpose for a in self.actions if isinstance(a, SendApdu)]

    def apdus(self, prefix: str) -> list[bytes]:
        return [a.apdu for a in self.actions if isinstance(a, SendApdu) and a.purpose.startswith(prefix)]


def drive(tx: Transaction, card: Callable[[bytes], bytes], *, pin: str = "entered",
          host: Callable[[GoOnline], tuple[str | None, bytes]] | None = None, max_steps: int = 200,
          offline_pins: list[str] | None = None) -> Run:
    """Run ``tx`` to Finished: ``card`` answers APDUs, ``pin`` every PIN request, ``host`` GoOnline."""
    action = tx.start()
    actions: list[Action] = []
    answers: list[bytes] = []
    online: GoOnline | None = None
    for _ in range(max_steps):
        actions.append(action)
        if isinstance(action, SendApdu):
            answers.append(card(action.apdu))
            action = tx.on_response(answers[-1])
        elif isinstance(action, RequestOnlinePin):
            action = tx.on_pin(pin)
        elif isinstance(action, VerifyOfflinePin):  # the PIN pad's part, as sim.devices.pinpad does it
            if not offline_pins:
                action = tx.on_offline_pin(pin)
                continue
            request = OfflinePinRequest(action.enciphered, action.amount_minor, action.tries_left,
                                        action.icc_modulus, action.icc_exponent, action.challenge)
            command = offline_verify_apdu(request, offline_pins.pop(0), lambda n: b"\x55" * n)
            answer = card(command) if command is not None else b"\x6f\x00"
            action = tx.on_offline_pin("entered", int.from_bytes(answer[-2:], "big"))
        elif isinstance(action, GoOnline):
            online = action
            if host is None:
                raise AssertionError("the kernel went online but the test gave no host")
            action = tx.on_online_result(*host(action))
        else:
            return Run(action, actions, answers, online)
    raise AssertionError("the kernel did not finish")


def run_card(key: str, code: str | None = "00", *, pin: str = "entered", tamper_arpc: bool = False,
             config: TerminalConfig = CONFIG, profile: SimCardProfile | None = None) -> Run:
    profile = profile or CATALOGUE[key]
    card = CardApplet(profile)
    host = issuer(profile, code, tamper_arpc=tamper_arpc)
    return drive(transaction(config), card.process, pin=pin, host=host)
