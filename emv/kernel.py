"""The sans-I/O EMV contact kernel: one ``Transaction`` from application selection to the final cryptogram.

The transaction returns actions (``emv.actions``) and is fed their answers; it never touches a device, clock
or random source of its own (``when`` and ``unpredictable_number`` are injected). Steps, in EMV 4.4 order:

1. application selection, PSE or list of AIDs, then final selection (Book 1 §12, ``emv.selection``);
2. GET PROCESSING OPTIONS with the PDOL (Book 3 §10.1); ``6985`` drops the candidate and selects the next;
3. READ RECORD over the AFL and the mandatory data check (Book 3 §10.2, §7.2);
4. offline data authentication: not yet performed, so the TVR says so (Book 3 §10.3);
5. processing restrictions (§10.4), cardholder verification (§10.5), terminal risk management: floor limit
   (§10.6), terminal action analysis (§10.7) — ``emv.tvr``, ``emv.cvm``;
6. first GENERATE AC with CDOL1 (§9.2); an ARQC goes online (``GoOnline``); after the host, issuer
   authentication (EXTERNAL AUTHENTICATE or ``91`` in CDOL2), issuer scripts and the second GENERATE AC with
   CDOL2 (§10.9–§10.11) — ``emv.completion``, which also builds the receipt mapping.

Any unexpected status word or malformed card data ends the transaction as ``TERMINATED`` with a reason. Once
the host has approved, every failure ends as ``DECLINED_AFTER_ONLINE_APPROVAL`` so the caller reverses the
authorisation. The receipt mapping has the keys ``aid``, ``app_label``, ``pan`` (masked), ``tvr``, ``tsi``,
``ac``, ``cid``, ``atc``, ``cvm``, ``cvm_results`` (9F34), ``script_results`` (9F5B) when known, ``oda`` and
``outcome``. No PAN ever reaches an exception or a reason.

>>> import datetime as dt
>>> from emv.config import STANDARD_AIDS
>>> tx = Transaction(TerminalConfig(aids=STANDARD_AIDS), amount_minor=5000, when=dt.datetime(2026, 5, 1, 12),
...                  unpredictable_number=lambda: bytes(4), sequence_counter=1)
>>> tx.start()
SendApdu(apdu=b'\\x00\\xa4\\x04\\x00\\x0e1PAY.SYS.DDF01\\x00', purpose='SELECT PSE')
>>> tx.on_response(bytes.fromhex("6A81")).reason
'card blocked or SELECT not supported (6A81)'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Mapping
from types import MappingProxyType

from emv import apdu, dol, records, tlv
from emv.actions import (
    PIN_STATUSES,
    Action,
    ChooseApplication,
    Finished,
    GoOnline,
    KernelReason,
    OfflinePinAnswer,
    Outcome,
    RequestOnlinePin,
    SendApdu,
    Step,
    Stop,
    VerifyOfflinePin,
    transmit,
)
from emv.apdu import CryptogramType
from emv.authentication import OdaContext, OdaMethod, OdaResult, StaticData, authenticate, choose_method, pin_key
from emv.completion import (
    APPROVAL_CODES,
    FIELD_55_TAGS,
    UNABLE_TO_GO_ONLINE_APPROVED,
    UNABLE_TO_GO_ONLINE_DECLINED,
    AcContext,
    HostAnswer,
    authenticate_issuer,
    completion_outcome,
    generate_ac,
    issuer_scripts,
    online_request,
    receipt,
)
from emv.config import AidConfig, TerminalConfig
from emv.cvm import CvmContext, CvmOutcome, perform_cvm
from emv.risk import check_exception_file, manage_risk
from emv.selection import Candidate, Fci, build_candidates, final_select
from emv.tvr import AipBit, BitField, TsiBit, TvrBit, check_restrictions, decide, default_action
from pos_errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = ["Transaction", "TerminalConfig", "AidConfig", "FIELD_55_TAGS", "APPROVAL_CODES"]


def _bcd(number: int, digits: int) -> bytes:
    return bytes.fromhex(f"{number:0{digits}d}")


class Transaction:
    """One contact EMV transaction. Call ``start`` once, then the ``on_*`` method matching the last action.

    Calling the wrong ``on_*`` method, or any method after ``Finished``, raises LocalProtocolError and leaves
    the transaction unchanged.
    """

    def __init__(self, config: TerminalConfig, *, amount_minor: int, transaction_type: int = 0x00,
                 when: dt.datetime, unpredictable_number: Callable[[], bytes], sequence_counter: int) -> None:
        if not 0 <= amount_minor <= 999_999_999_999:
            raise LocalProtocolError("amount_minor must fit n12 (0 to 999999999999)")
        if not 0 <= sequence_counter <= 99_999_999:
            raise LocalProtocolError("sequence_counter must fit n8")
        if not (0 <= transaction_type <= 0x99 and f"{transaction_type:02x}".isdigit()):
            raise LocalProtocolError("transaction_type is n2, e.g. 0x00 purchase, 0x20 refund")
        un = unpredictable_number()
        if len(un) != 4:
            raise LocalProtocolError("the unpredictable number 9F37 is 4 bytes")
        self._config = config
        self._aid: AidConfig = config.aids[0]  # replaced at final selection
        self._amount = amount_minor
        self._today = when.date()
        self._terminal: dict[int, bytes] = {
            0x9F02: _bcd(amount_minor, 12), 0x9F03: bytes(6), 0x9F1A: config.country_code,
            0x5F2A: config.currency_code, 0x5F36: _bcd(config.currency_exponent, 2),
            0x9A: bytes.fromhex(when.strftime("%y%m%d")), 0x9F21: bytes.fromhex(when.strftime("%H%M%S")),
            0x9C: bytes([transaction_type]), 0x9F37: bytes(un), 0x9F35: bytes([config.terminal_type]),
            0x9F33: config.capabilities, 0x9F40: config.additional_capabilities,
            0x9F1C: config.terminal_id.encode("ascii"), 0x9F16: config.merchant_id.encode("ascii"),
            0x9F15: config.merchant_category_code, 0x9F1E: config.ifd_serial.encode("ascii"),
            0x9F41: _bcd(sequence_counter, 8), 0x9F39: b"\x05",
        }
        self._card: dict[int, bytes] = {}
        self._issuer: dict[int, bytes] = {}
        self._tvr: BitField[TvrBit] = BitField(TvrBit, 5)
        self._tsi: BitField[TsiBit] = BitField(TsiBit, 2)
        self._cvm: CvmOutcome | None = None
        self._host_approved = False
        self._static = StaticData()
        self._offered: tuple[str, ...] = ()
        self._oda = OdaResult(OdaMethod.NONE)
        self._dol_data: dict[int, bytes] = {}  # PDOL, CDOL1, CDOL2 values as sent: CDA hashes them
        self._random_number = int.from_bytes(un, "big") % 99 + 1  # 1..99 for random selection (§10.6.2)
        self._steps: Generator[Action, object, Finished] = self._run()
        self._last: Action | None = None

    # --- public API -----------------------------------------------------------------------------------------

    def start(self) -> Action:
        """The first action: SELECT the PSE."""
        if self._last is not None:
            raise LocalProtocolError("start() was already called")
        return self._advance(None)

    def on_response(self, rapdu: bytes) -> Action:
        """Feed the R-APDU (data + SW1 SW2) answering the last ``SendApdu``."""
        self._expect(SendApdu)
        return self._advance(bytes(rapdu))

    def on_application(self, index: int | None) -> Action:
        """Feed the cardholder's choice after ``ChooseApplication``: an index into its labels, None to cancel."""
        self._expect(ChooseApplication)
        if index is not None and not (isinstance(index, int) and 0 <= index < len(self._offered)):
            raise LocalProtocolError(f"the choice must be 0..{len(self._offered) - 1} or None")
        return self._advance(("choice", index))

    def on_pin(self, status: str) -> Action:
        """Feed the PIN pad outcome after ``RequestOnlinePin``: entered, bypassed, cancelled or timeout."""
        self._expect(RequestOnlinePin)
        if status not in PIN_STATUSES:
            raise LocalProtocolError(f"PIN status must be one of {', '.join(PIN_STATUSES)}")
        return self._advance(status)

    def on_offline_pin(self, status: str, sw: int | None = None) -> Action:
        """Feed the PIN pad outcome after ``VerifyOfflinePin``: the entry status and, when entered, the status
        word the card gave the pad's VERIFY."""
        self._expect(VerifyOfflinePin)
        if status not in PIN_STATUSES:
            raise LocalProtocolError(f"PIN status must be one of {', '.join(PIN_STATUSES)}")
        if status == "entered" and (sw is None or not 0 <= sw <= 0xFFFF):
            raise LocalProtocolError("an entered offline PIN needs the card's status word")
        return self._advance(OfflinePinAnswer(status, sw))

    def on_online_result(self, response_code: str | None, issuer_data: bytes = b"") -> Action:
        """Feed the host's answer after ``GoOnline``: the response code (None: could not go online) and the
        issuer's field-55 TLVs (``91``, ``71``, ``72``)."""
        self._expect(GoOnline)
        if response_code is not None and (len(response_code) != 2 or not response_code.isascii()):
            raise LocalProtocolError("the response code is two characters")
        return self._advance(HostAnswer(response_code, bytes(issuer_data)))

    @property
    def data(self) -> Mapping[int, bytes]:
        """Every data element known so far (terminal, card, issuer, TVR ``95``, TSI ``9B``), read-only."""
        return MappingProxyType(self._values())

    # --- driving the generator ------------------------------------------------------------------------------

    def _expect(self, kind: type) -> None:
        if not isinstance(self._last, kind):
            waiting = type(self._last).__name__ if self._last is not None else "start()"
            raise LocalProtocolError(f"the transaction is not waiting for an answer to {kind.__name__} "
                                     f"(last action: {waiting})")

    def _advance(self, answer: object) -> Action:
        try:
            action = self._steps.send(answer) if self._last is not None else next(self._steps)
        except StopIteration as done:
            action = done.value
        self._last = action
        return action

    def _values(self) -> dict[int, bytes]:
        status = {0x95: bytes(self._tvr), 0x9B: bytes(self._tsi)}
        return {**self._card, **self._issuer, **self._terminal, **status}  # terminal data wins

    def _run(self) -> Generator[Action, object, Finished]:
        try:
            return (yield from self._process())
        except Stop as stop:
            return self._finish(stop.outcome, stop.code, stop.reason)
        except ProtocolError as exc:  # remote: card garbage; local: card data we cannot put in a command
            return self._finish(Outcome.TERMINATED, KernelReason.CARD_DATA_MALFORMED,
                                f"malformed data from the card: {exc}")

    def _finish(self, outcome: Outcome, code: KernelReason, reason: str) -> Finished:
        if self._host_approved and outcome not in (Outcome.APPROVED, Outcome.DECLINED_AFTER_ONLINE_APPROVAL):
            outcome = Outcome.DECLINED_AFTER_ONLINE_APPROVAL
            reason = f"host approved but the transaction failed at the card: {reason}"
        return Finished(outcome, reason, code, receipt(self._values(), outcome, cvm=self._cvm, oda_result=self._oda))

    # --- the transaction ------------------------------------------------------------------------------------

    def _process(self) -> Step[Finished]:
        candidates = yield from build_candidates(self._config)
        if not candidates:
            raise Stop(Outcome.TERMINATED, KernelReason.NO_APPLICATION,
                       "no application on the card is supported by this terminal")
        confirm = (candidates[0].priority or 0) & 0x80
        if self._config.cardholder_selection and (len(candidates) > 1 or confirm):
            self._offered = tuple(c.label for c in candidates)
            answer = yield ChooseApplication(self._offered)  # Book 1 §12.4
            index = answer[1] if isinstance(answer, tuple) else None
            if index is None:
                raise Stop(Outcome.TERMINATED, KernelReason.SELECTION_CANCELLED,
                           "the cardholder cancelled application selection")
            candidates.insert(0, candidates.pop(index))
        gpo = yield from self._select_and_initiate(candidates)
        self._card.update(gpo)
        afl = records.parse_afl(gpo[0x94])
        yield from self._read_records(afl)
        missing = [f"{t:X}" for t in records.MANDATORY_RECORD_TAGS if t not in self._card]
        if missing:
            raise Stop(Outcome.TERMINATED, KernelReason.CARD_DATA_MISSING,
                       f"mandatory card data missing: {', '.join(missing)}")
        pan = records.pan_digits(self._card[0x5A])
        yield from self._authenticate_offline(pan)
        check_exception_file(pan, records.psn_digits(self._card.get(0x5F34)), self._config.exception_file,
                             self._tvr)
        check_restrictions(self._card, today=self._today, app_versions=self._aid.app_versions,
                           country_code=self._config.country_code, tvr=self._tvr,
                           transaction_type=self._terminal[0x9C][0],
                           atm=self._config.terminal_type in (0x14, 0x15, 0x16)  # unattended, financial institution
                           and bool(self._config.additional_capabilities[0] & 0x80))  # 9F40: cash
        yield from self._verify_cardholder(pan)
        if self._aip(AipBit.TERMINAL_RISK_MANAGEMENT_TO_BE_PERFORMED):
            yield from manage_risk(self._amount, self._aid, self._card, self._random_number, self._tvr,
                                   self._tsi)
        requested, why = decide(bytes(self._tvr), self._card, tac_denial=self._aid.tac_denial,
                                tac_online=self._aid.tac_online, tac_default=self._aid.tac_default,
                                online_capable=self._config.online_capable)
        returned = yield from generate_ac(self._ac_context(), requested, 0x8C, "first")
        self._tsi.set(TsiBit.CARD_RISK_MANAGEMENT_PERFORMED)
        if returned is CryptogramType.AAC:
            who = "terminal asked for it" if requested is CryptogramType.AAC else "card risk management"
            return self._finish(Outcome.DECLINED, KernelReason.DECLINED_OFFLINE,
                                f"declined: AAC at first GENERATE AC ({why}; {who})")
        if returned is CryptogramType.TC:
            return self._finish(Outcome.APPROVED, KernelReason.APPROVED_OFFLINE,
                                "approved offline: TC at first GENERATE AC")
        answer = yield online_request(self._values(), self._card, pan)
        if not isinstance(answer, HostAnswer):  # pragma: no cover - on_online_result guarantees it
            raise LocalProtocolError("expected the host answer")
        return (yield from self._complete(answer))

    def _select_and_initiate(self, candidates: list[Candidate]) -> Step[dict[int, bytes]]:
        """Final selection and GPO; ``6985`` removes the candidate and selects the next (Book 3 §10.1)."""
        while True:
            candidate, fci = yield from final_select(candidates)
            self._use_application(candidate, fci)
            pdol = dol.parse(fci.pdol) if fci.pdol else ()
            self._dol_data[0x9F38] = dol.build(pdol, self._values())
            command = apdu.get_processing_options(self._dol_data[0x9F38])
            response = yield from transmit(command, "GET PROCESSING OPTIONS")
            if response.ok:
                return records.parse_gpo_response(response.data)
            if response.sw != 0x6985:
                raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR,
                           f"GET PROCESSING OPTIONS failed: {response.sw:04X} {response.meaning}")
            candidates.pop(0)
            self._card.clear()
            if not candidates:
                raise Stop(Outcome.NOT_ACCEPTED, KernelReason.NOT_ACCEPTED,
                           "card refused the transaction (6985) in every application")

    def _use_application(self, candidate: Candidate, fci: Fci) -> None:
        self._aid = candidate.config
        self._card.clear()
        self._card.update(fci.data)
        self._card.setdefault(0x50, candidate.label.encode("latin-1", "replace"))
        self._card[0x4F] = candidate.adf_name
        self._terminal[0x9F06] = candidate.config.aid
        self._terminal.pop(0x9F09, None)
        if candidate.config.app_versions:
            self._terminal[0x9F09] = candidate.config.app_versions[0]
        self._terminal[0x9F1B] = candidate.config.floor_limit_minor.to_bytes(4, "big")

    def _aip(self, bit: AipBit) -> bool:
        aip = self._card.get(0x82, bytes(2))
        return bit in BitField(AipBit, 2, aip)

    def _read_records(self, afl: tuple[records.AflEntry, ...]) -> Step[None]:
        """READ RECORD over the AFL (Book 3 §10.2); a data object twice in the records terminates."""
        seen: set[int] = set()
        reads = [apdu.read_record(entry.sfi, number) for entry in afl for number in range(entry.first, entry.last + 1)]
        for entry in afl:
            for number in range(entry.first, entry.last + 1):
                where = f"READ RECORD {entry.sfi}.{number}"
                command = reads.pop(0)  # the rest follow it (SendApdu.then): the reader may run them at once
                response = yield from transmit(command, where, then=tuple(reads))
                if not response.ok:
                    raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR,
                               f"{where} failed: {response.sw:04X} {response.meaning}")
                if number < entry.first + entry.oda_records:  # Book 3 §10.3: static data to authenticate
                    self._static.add_record(entry.sfi, response.data)
                for tag, value in records.parse_record(response.data, entry.sfi).items():
                    if tag in seen:
                        raise Stop(Outcome.TERMINATED, KernelReason.CARD_DATA_DUPLICATED,
                                   f"card data object {tag:X} appears in two records")
                    seen.add(tag)
                    self._card[tag] = value

    def _authenticate_offline(self, pan: str) -> Step[None]:
        """Book 3 §10.3: SDA, DDA, or the key recovery that CDA needs at GENERATE AC."""
        method = choose_method(self._card.get(0x82, bytes(2)), self._config.capabilities)
        ctx = OdaContext(self._config.capks, self._config.revoked, self._today, self._aid.default_ddol)
        self._oda = yield from authenticate(method, ctx, self._card, self._terminal, self._static,
                                            self._card[0x4F][:5], pan, self._tvr, self._tsi)

    def _verify_cardholder(self, pan: str) -> Step[None]:
        if not self._aip(AipBit.CARDHOLDER_VERIFICATION_SUPPORTED):
            self._terminal[0x9F34] = bytes.fromhex("3F0000")  # Book 3 §10.5: not performed
            return
        ctx = CvmContext(
            amount_minor=self._amount, transaction_type=self._terminal[0x9C][0],
            in_application_currency=self._card.get(0x9F42) == self._config.currency_code,
            capabilities=self._config.capabilities, unattended=self._config.terminal_type % 0x10 in (4, 5, 6),
            icc_pin_key=pin_key(self._oda, self._card, pan, self._today))
        self._cvm = yield from perform_cvm(self._card.get(0x8E), ctx, pan, self._tvr, self._tsi)
        self._terminal[0x9F34] = self._cvm.results

    def _ac_context(self) -> AcContext:
        return AcContext(self._card, self._terminal, self._dol_data, self._values, self._tvr, self._oda,
                         self._aid.default_tdol, self._host_approved)

    def _complete(self, answer: HostAnswer) -> Step[Finished]:
        """Online processing and completion (Book 3 §10.9–§10.11): issuer authentication, issuer scripts around
        the second GENERATE AC with CDOL2 (§9.2), the outcome — each step in ``emv.completion``."""
        code = answer.response_code
        self._host_approved = code in APPROVAL_CODES
        self._issuer[0x8A] = UNABLE_TO_GO_ONLINE_DECLINED if code is None else code.encode("ascii")
        try:
            issuer = tlv.flatten(tlv.decode(answer.issuer_data))
        except RemoteProtocolError:
            issuer = {}  # garbage from the host: continue without issuer authentication data
        if code is not None and 0x91 in issuer:
            self._issuer[0x91] = issuer[0x91]
            yield from authenticate_issuer(issuer[0x91], self._card, self._tvr, self._tsi)
        # Book 3 §10.10: 71 before the final GENERATE AC ...
        yield from issuer_scripts(answer.issuer_data, 0x71, self._issuer, self._tvr, self._tsi)
        requested = CryptogramType.TC if self._host_approved else CryptogramType.AAC
        if code is None and self._config.approve_offline_when_unable_online:
            requested, _ = default_action(bytes(self._tvr), self._card, tac_default=self._aid.tac_default)
            if requested is CryptogramType.TC:
                self._issuer[0x8A] = UNABLE_TO_GO_ONLINE_APPROVED
        returned = yield from generate_ac(self._ac_context(), requested, 0x8D, "second")
        yield from issuer_scripts(answer.issuer_data, 0x72, self._issuer, self._tvr, self._tsi)  # ... 72 after it
        return self._finish(*completion_outcome(returned, code, host_approved=self._host_approved))
