"""Ports: the typed edges between business flows and the outside world.

Flows talk only to these ``typing.Protocol`` ports; ``drivers/`` implements them for real devices and networks
(adapters depend on ports, never the reverse), tests may pass fakes, and ``terminal/`` wires one implementation
to each port. Value types travel across the ports. Money is always an ``int`` of minor units (fen) of CNY
(ISO 4217 numeric 156). Full PAN and track data travel only where the protocol needs them and are excluded from
``repr`` so they cannot reach a log by accident.

One module per port group: ``base`` (cancel token, clock), ``carrier``, ``host`` (acquirer: authorisation,
reversal, advices, refunds, settlement), ``devices`` (PIN pad, card reader, printer, scanner), ``journal`` and
``wallet``. Everything is re-exported here, so ``from flows.ports import …`` names any of them.

>>> SimInfo("89860112345678901234", "1064912345678", "active", "Basic 1G", 1250, 300, "2027-01-31").masked_iccid
'8986…1234'
"""

from __future__ import annotations

from emv.pan import mask_pan
from flows.ports.base import CURRENCY_CNY, CancelToken, Clock
from flows.ports.carrier import (
    CarrierPort,
    CarrierStatus,
    Plan,
    ReverseResult,
    SimInfo,
    SimStatus,
    TopupResult,
    TopupStatus,
)
from flows.ports.devices import (
    NUMERIC_PROMPTS,
    CardReaderPort,
    ContactlessReaderPort,
    OfflinePinRequest,
    OfflinePinResult,
    PadPrompt,
    PinEntry,
    PinPadPort,
    PinStatus,
    PrinterPort,
    PrinterStatus,
    ReceiptLine,
    ScannerPort,
)
from flows.ports.host import (
    APPROVAL_CODES,
    PARTIAL_APPROVAL,
    AdviceHostPort,
    AdviceRequest,
    AuthRequest,
    AuthResponse,
    BatchTotals,
    BatchUploadItem,
    HostPort,
    RefundHostPort,
    RefundRequest,
    ReversalRequest,
    SettlementHostPort,
    SettlementRequest,
)
from flows.ports.journal import JournalPort, TxnRecord
from flows.ports.wallet import WalletOrderStatus, WalletPort, WalletReason, WalletResult, WalletStatus

__all__ = ["AdviceHostPort", "AdviceRequest", "AuthRequest", "AuthResponse", "BatchTotals", "BatchUploadItem",
           "CURRENCY_CNY", "CancelToken", "CardReaderPort", "ContactlessReaderPort", "CarrierPort", "CarrierStatus",
           "Clock", "HostPort", "JournalPort", "NUMERIC_PROMPTS", "OfflinePinRequest", "OfflinePinResult", "PadPrompt",
           "PinEntry", "PinPadPort", "PinStatus", "Plan",
           "PrinterPort", "PrinterStatus", "ReceiptLine", "RefundHostPort", "RefundRequest", "ReversalRequest",
           "ReverseResult",
           "ScannerPort", "SettlementHostPort", "SettlementRequest", "SimInfo", "SimStatus", "TopupResult",
           "TopupStatus", "TxnRecord", "WalletOrderStatus", "WalletPort", "WalletReason", "WalletResult",
           "WalletStatus", "mask_pan", "APPROVAL_CODES", "PARTIAL_APPROVAL"]
