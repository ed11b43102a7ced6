"""Magnetic stripe test cards: magstripe-only cards and a chip card whose chip is dead (for fallback).

Each entry is a ``sim.devices.cards.SimCardProfile`` (so the simulated acquirer knows its PAN, expiry and PIN) plus
how the card presents itself: the tracks its stripe carries and, for a chip card, the chip in the slot.
``BrokenChip`` answers the reset with garbage: the terminal's ATR parser refuses it, the chip counts as
failed, and a swipe of the same card is then accepted as a fallback (POS entry mode 80).

| key | stripe service code | chip | what happens |
|---|---|---|---|
| ``stripe-only`` | 101 (no chip) | none | swipe → PIN → approved (entry mode 90) |
| ``stripe-chip`` | 201 (chip) | works | swipe refused: "insert the card"; insert → normal chip payment |
| ``stripe-dead-chip`` | 201 (chip) | mute | insert → chip fails → swipe accepted as fallback (entry mode 80) |

>>> STRIPE_CARDS["stripe-only"].track2().startswith(b";6229")
True
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.devices.card import CardApplet
from sim.devices.cards import SimCardProfile

__all__ = ["StripeCard", "BrokenChip", "STRIPE_CARDS", "STRIPE_PROFILES", "tracks_of"]


class BrokenChip:
    """A chip that answers the reset with bytes no ISO/IEC 7816-3 ATR can start with."""

    atr = bytes.fromhex("00 FF")

    def process(self, apdu: bytes) -> bytes:
        return b"\x6F\x00"


@dataclass(frozen=True)
class StripeCard:
    profile: SimCardProfile
    service_code: str
    chip: str  # "none" | "works" | "dead"

    def track2(self) -> bytes:
        return tracks_of(self.profile)[1]

    def chip_applet(self) -> CardApplet | BrokenChip | None:
        if self.chip == "works":
            return CardApplet(self.profile)
        return BrokenChip() if self.chip == "dead" else None


def tracks_of(profile: SimCardProfile) -> tuple[bytes, bytes]:
    """(track 1, track 2) as a reader head delivers them, for any test card (chip cards have stripes too)."""
    tail = f"{profile.expiry[:4]}{profile.service_code}00000123"
    return (f"%B{profile.pan}^{profile.cardholder_name}^{tail}?".encode("ascii"),
            f";{profile.pan}={tail}?".encode("ascii"))


def _card(key: str, label: str, pan: str, imk: str, service_code: str, chip: str) -> StripeCard:
    profile = SimCardProfile(key=key, label=label, pan=pan, psn="01", expiry="301231", effective="250101",
                             pin="1234", issuer_master_key=bytes.fromhex(imk), service_code=service_code,
                             cardholder_name="STRIPE/TEST")
    return StripeCard(profile, service_code, chip)


STRIPE_CARDS: dict[str, StripeCard] = {
    card.profile.key: card for card in (
        _card("stripe-only", "Magstripe only / 纯磁条卡", "6229000011112226", "1234567890ABCDEF1234567890ABCDEF",
              "101", "none"),
        _card("stripe-chip", "Chip card, swiped / 芯片卡刷卡", "6229000022223331",
              "234567890ABCDEF1234567890ABCDEF1", "201", "works"),
        _card("stripe-dead-chip", "Dead chip → fallback / 芯片损坏降级", "6229000033334446",
              "34567890ABCDEF1234567890ABCDEF12", "201", "dead"),
    )
}
STRIPE_PROFILES: dict[str, SimCardProfile] = {key: card.profile for key, card in STRIPE_CARDS.items()}
