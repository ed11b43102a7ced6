"""DUKPT machinery shared by TDES DUKPT (ANSI X9.24-1:2009 Annex A) and AES DUKPT (ANSI X9.24-3-2017 §6).

Both variants number a device's transactions with a counter of ``width`` bits (21 for TDES, 32 for AES) and
never use a counter with more than ``max_ones`` one bits (10 for TDES, 16 for AES): the receiving side does
one derivation step per one bit, so the cap bounds its work. When the originating device would step onto a
counter with too many ones it adds the counter's lowest one bit instead, which skips the forbidden values
(X9.24-1:2009 Annex A "New Key"; X9.24-3-2017 §6 "Update State for next Transaction"). A counter that
overflows its width means the device is exhausted and must be given a new initial key.

The key tree is the same too: the key for a counter is reached from the initial key by one derivation *step*
per one bit, most significant bit first, each step taking the counter with the bits seen so far. The step
differs (TDES: the non-reversible key generation process; AES: AES-ECB over derivation data), so callers pass
it in.

>>> hex(TDES_COUNTER.advance(0x0FF801))  # ten one bits: skip by the lowest one bit (X9.24-1:2009 A.4.3)
'0xff802'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import comb

from pos_errors import CryptoError

__all__ = ["CounterRule", "TDES_COUNTER", "AES_COUNTER", "Step", "derive_along_counter", "FutureKeys", "DukptDevice"]

Step = Callable[[bytes, int], bytes]
"""One derivation step: ``step(key, counter)`` derives the key for ``counter`` from the key of its parent."""


@dataclass(frozen=True)
class CounterRule:
    """The transaction-counter rule of one DUKPT variant.

    Args:
        width: counter width in bits.
        max_ones: the most one bits a counter in use may have.
    """

    width: int
    max_ones: int

    @property
    def limit(self) -> int:
        """The first value that no longer fits the counter (``2**width``): reaching it means exhaustion."""
        return 1 << self.width

    def is_valid(self, counter: int) -> bool:
        """True if an originating device could use ``counter`` (non-zero, fits, few enough ones)."""
        return 0 < counter < self.limit and counter.bit_count() <= self.max_ones

    def advance(self, counter: int) -> int | None:
        """The counter after ``counter``, or None when the device is exhausted."""
        if counter.bit_count() < self.max_ones:
            nxt = counter + 1
        else:  # adding the lowest one bit carries it away: the result has no more ones than now
            nxt = counter + (counter & -counter)
        return nxt if nxt < self.limit else None

    def remaining(self, counter: int) -> int:
        """How many valid counters there are from ``counter`` (inclusive) up to exhaustion."""
        return self._count_below(self.limit) - self._count_below(counter)

    def _count_below(self, n: int) -> int:
        """Count of x in [0, n) with at most ``max_ones`` one bits (counting zero)."""
        n = min(n, self.limit)
        if n == self.limit:
            return sum(comb(self.width, j) for j in range(self.max_ones + 1))
        total, ones = 0, 0
        for bit in reversed(range(self.width)):
            if n >> bit & 1:
                # every x sharing n's bits above `bit`, with 0 at `bit` and anything below, is < n
                total += sum(comb(bit, j) for j in range(self.max_ones - ones + 1))
                ones += 1
                if ones > self.max_ones:
                    break
        return total


TDES_COUNTER = CounterRule(width=21, max_ones=10)  # X9.24-1:2009 Annex A: 21-bit encryption counter
AES_COUNTER = CounterRule(width=32, max_ones=16)  # X9.24-3-2017 §6: 32-bit counter, MAX_WORK = 16


def derive_along_counter(step: Step, width: int, initial_key: bytes, counter: int) -> bytes:
    """The receiving side's derivation: walk the counter's one bits from the most significant down.

    X9.24-1:2009 Annex A (receiving SCD) and X9.24-3-2017 §6 (host derivation) both set the bits one at a
    time in a working counter and derive one step per bit.
    """
    key, partial = initial_key, 0
    for bit in reversed(range(width)):
        mask = 1 << bit
        if counter & mask:
            partial |= mask
            key = step(key, partial)
    return key


class FutureKeys:
    """The originating device's key registers: X9.24-1 "Future Key Registers", X9.24-3 "Intermediate
    Derivation Key Registers". Register ``b`` holds the key of the next counter whose lowest one bit is ``b``.

    A new device (``counter=1``) fills every register with one step from the initial key, as the standards'
    "Load Initial Key" does. A larger ``counter`` resumes a device mid-life by deriving the registers it would
    hold at that point — a simulator convenience; a real device keeps its registers and never the initial key.

    Args:
        rule: the variant's counter rule.
        step: the variant's derivation step.
        initial_key: the device's initial key (IPEK / IK).
        counter: the counter of the next transaction.

    Raises:
        CryptoError: ``counter`` is not one the device could reach.
    """

    def __init__(self, rule: CounterRule, step: Step, initial_key: bytes, counter: int = 1) -> None:
        if not rule.is_valid(counter):
            raise CryptoError(f"DUKPT counter {counter:#x} is not a valid transaction counter")
        self._rule, self._step = rule, step
        self._counter: int | None = counter
        self._registers: list[bytes | None] = [None] * rule.width
        lowest = (counter & -counter).bit_length() - 1
        for bit in range(lowest, rule.width):
            mask = 1 << bit
            if bit == lowest or not counter & mask:
                # the counter this register serves: counter's bits above `bit`, plus `bit` itself
                target = (counter >> (bit + 1) << (bit + 1)) | mask
                self._registers[bit] = derive_along_counter(step, rule.width, initial_key, target)

    @property
    def counter(self) -> int | None:
        """The counter of the next transaction; None once exhausted."""
        return self._counter

    @property
    def remaining(self) -> int:
        """Transactions left before exhaustion."""
        return 0 if self._counter is None else self._rule.remaining(self._counter)

    @property
    def registers(self) -> tuple[bytes | None, ...]:
        """The register contents, lowest bit first (None = erased). For tests and diagnostics only."""
        return tuple(self._registers)

    def next_key(self) -> tuple[int, bytes]:
        """Take the key for the current counter, then run "New Key": derive the future keys below its lowest
        one bit (unless the counter already has ``max_ones`` ones), erase it, and advance the counter.

        Returns:
            (counter used, its key).

        Raises:
            CryptoError: the device is exhausted; its state does not change.
        """
        counter = self._counter
        if counter is None:
            raise CryptoError("DUKPT transaction counter exhausted: the device needs a new initial key")
        lowest = (counter & -counter).bit_length() - 1
        key = self._registers[lowest]
        if key is None:  # cannot happen while the invariant holds; refuse rather than use a wrong key
            raise CryptoError(f"DUKPT key register {lowest} is empty at counter {counter:#x}")
        if counter.bit_count() < self._rule.max_ones:
            for bit in reversed(range(lowest)):
                self._registers[bit] = self._step(key, counter | 1 << bit)
        self._registers[lowest] = None
        self._counter = self._rule.advance(counter)
        return counter, key

    def __repr__(self) -> str:  # never the keys
        counter = "exhausted" if self._counter is None else f"{self._counter:#x}"
        return f"FutureKeys(counter={counter}, remaining={self.remaining})"


class DukptDevice:
    """The originating side (a PIN pad) after "Load Initial Key", for either variant: its key registers and
    how a counter is written into a KSN. ``TdesDukptDevice`` and ``AesDukptDevice`` only say how to build them.

    Args:
        keys: the device's registers, already positioned at the next transaction's counter.
        ksn_for: the KSN that carries a counter (initial key ID / KSI + counter).
    """

    def __init__(self, keys: FutureKeys, ksn_for: Callable[[int], bytes]) -> None:
        self._keys, self._ksn_for = keys, ksn_for

    @property
    def ksn(self) -> bytes | None:
        """The KSN the next transaction will use; None once exhausted."""
        counter = self._keys.counter
        return None if counter is None else self._ksn_for(counter)

    @property
    def remaining(self) -> int:
        """Transactions left before exhaustion."""
        return self._keys.remaining

    @property
    def registers(self) -> tuple[bytes | None, ...]:
        """The key registers by counter bit, lowest first. For tests and diagnostics only."""
        return self._keys.registers

    def next_transaction_key(self) -> tuple[bytes, bytes]:
        """The KSN and key for the next transaction (TDES: the transaction key; AES: the intermediate
        derivation key, for ``working_key``); advances the counter.

        Raises:
            CryptoError: the counter is exhausted; the device is unchanged and stays exhausted.
        """
        counter, key = self._keys.next_key()
        return self._ksn_for(counter), key

    def __repr__(self) -> str:  # never the keys
        ksn = self.ksn
        return f"{type(self).__name__}(ksn={ksn.hex().upper() if ksn else 'exhausted'}, remaining={self.remaining})"
