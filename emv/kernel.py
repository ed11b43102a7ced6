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
   authentication (EXTERNAL AUTHENTICATE or ``91`` in CDOL2) and the second GENERATE AC with CDOL2 (§10.9).

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
import hashlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from emv import apdu, dol, oda, records, tlv
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
from emv.authentication import (
    FAILED_BIT,
    OdaContext,
    OdaMethod,
    OdaResult,
    StaticData,
    authenticate,
    choose_method,
    pin_key,
)
from emv.config import AidConfig, TerminalConfig
from emv.cvm import CvmContext, CvmOutcome, perform_cvm
from emv.risk import check_exception_file, manage_risk
from emv.scripts import parse_scripts, run_scripts
from emv.selection import Candidate, Fci, build_candidates, final_select
from emv.tvr import AipBit, BitField, TsiBit, TvrBit, check_restrictions, decide, default_action
from pos_errors import LocalProtocolError, OdaError, ProtocolError, RemoteProtocolError

__all__ = ["Transaction", "TerminalConfig", "AidConfig", "FIELD_55_TAGS", "APPROVAL_CODES"]

# Field 55 of the authorisation request: what the issuer needs to verify the ARQC (and the acquirer's checks).
FIELD_55_TAGS: tuple[int, ...] = (0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A,
                                  0x82, 0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41)
APPROVAL_CODES = frozenset({"00", "10", "11"})  # ISO 8583 response codes that approve
UNABLE_TO_GO_ONLINE_DECLINED = b"Z3"  # ARC the terminal sets itself (Book 4 Annex A6)
UNABLE_TO_GO_ONLINE_APPROVED = b"Y3"
_RANK = {CryptogramType.AAC: 0, CryptogramType.ARQC: 1, CryptogramType.TC: 2}  # a card may only go down


@dataclass(frozen=True)
class _HostAnswer:
    response_code: str | None
    issuer_data: bytes


def _bcd(number: int, digits: int) -> bytes:
    return bytes.fromhex(f"{number:0{digits}d}")


def _mask(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


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
        return self._advance(_HostAnswer(response_code, bytes(issuer_data)))

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
        return Finished(outcome, reason, code, self._receipt(outcome))

    def _receipt(self, outcome: Outcome) -> dict[str, str]:
        values = self._values()
        receipt = {"tvr": values[0x95].hex().upper(), "tsi": values[0x9B].hex().upper()}
        if 0x84 in values:
            receipt["aid"] = values[0x84].hex().upper()
        if 0x50 in values:
            receipt["app_label"] = values[0x50].decode("latin-1").strip()
        try:
            receipt["pan"] = _mask(records.pan_digits(values[0x5A])) if 0x5A in values else ""
        except RemoteProtocolError:
            receipt["pan"] = ""
        for key, tag in (("ac", 0x9F26), ("cid", 0x9F27), ("atc", 0x9F36), ("script_results", 0x9F5B)):
            if tag in values:
                receipt[key] = values[tag].hex().upper()
        if self._cvm is not None:
            receipt["cvm"] = self._cvm.method
        if 0x9F34 in values:
            receipt["cvm_results"] = values[0x9F34].hex().upper()
        receipt["oda"] = self._oda.method.value + (" failed" if self._oda.failed else "")
        receipt["outcome"] = outcome.value
        return {k: v for k, v in receipt.items() if v}

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
        returned = yield from self._generate_ac(requested, 0x8C, "first")
        self._tsi.set(TsiBit.CARD_RISK_MANAGEMENT_PERFORMED)
        if returned is CryptogramType.AAC:
            who = "terminal asked for it" if requested is CryptogramType.AAC else "card risk management"
            return self._finish(Outcome.DECLINED, KernelReason.DECLINED_OFFLINE,
                                f"declined: AAC at first GENERATE AC ({why}; {who})")
        if returned is CryptogramType.TC:
            return self._finish(Outcome.APPROVED, KernelReason.APPROVED_OFFLINE,
                                "approved offline: TC at first GENERATE AC")
        answer = yield self._go_online(pan)
        if not isinstance(answer, _HostAnswer):  # pragma: no cover - on_online_result guarantees it
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
        for entry in afl:
            for number in range(entry.first, entry.last + 1):
                where = f"READ RECORD {entry.sfi}.{number}"
                response = yield from transmit(apdu.read_record(entry.sfi, number), where)
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

    def _tc_hash(self, entries: tuple[dol.DolEntry, ...]) -> None:
        """TC Hash Value ``98`` when the CDOL asks for it: SHA-1 of the TDOL data, the card's ``97`` or the
        terminal's default TDOL, which sets TVR "default TDOL used" (B5b8) (Book 3 §5.4, §9.2.2)."""
        if not any(e.tag == 0x98 for e in entries):
            return
        tdol = self._card.get(0x97)
        if tdol is None and self._aid.default_tdol:
            tdol = self._aid.default_tdol
            self._tvr.set(TvrBit.DEFAULT_TDOL_USED)
        data = dol.build(dol.parse(tdol), self._values()) if tdol else b""
        self._terminal[0x98] = hashlib.sha1(data).digest()  # noqa: S324 - Book 2 Annex B3 mandates SHA-1

    def _generate_ac(self, requested: CryptogramType, dol_tag: int, which: str) -> Step[CryptogramType]:
        entries = dol.parse(self._card[dol_tag])
        self._tc_hash(entries)
        data = dol.build(entries, self._values())
        self._dol_data[dol_tag] = data
        # Book 3 §10.8: CDA is requested for a TC or ARQC when CDA was selected and has not failed yet.
        cda = self._oda.method is OdaMethod.CDA and not self._oda.failed and requested is not CryptogramType.AAC
        response = yield from transmit(apdu.generate_ac(requested, data, cda=cda),
                                       f"GENERATE AC ({which}, {requested.name}{', CDA' if cda else ''})")
        if not response.ok:
            raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR,
                       f"{which} GENERATE AC failed: {response.sw:04X} {response.meaning}")
        values = records.parse_generate_ac_response(response.data)
        self._card.update(values)
        returned = CryptogramType.from_cid(values[0x9F27][0])
        if _RANK[returned] > _RANK[requested]:  # Book 3 §9.3: the card may only answer lower
            raise Stop(Outcome.TERMINATED, KernelReason.CARD_ERROR,
                       f"card returned {returned.name} when {requested.name} was requested")
        if values[0x9F27][0] & 0x07 == 0x01:  # Book 3 §10.8 / Book 4 §6.3.7: CID "service not allowed"
            raise Stop(Outcome.DECLINED if not self._host_approved else Outcome.DECLINED_AFTER_ONLINE_APPROVAL,
                       KernelReason.SERVICE_NOT_ALLOWED, "card: service not allowed (CID reason code 1)")
        if cda and returned is not CryptogramType.AAC:
            self._verify_cda(response.data, values, dol_tag)
        return returned

    def _verify_cda(self, response: bytes, values: dict[int, bytes], dol_tag: int) -> None:
        """Book 2 §6.6.2: the signature in the GENERATE AC answer; its cryptogram becomes 9F26. A failure
        sets TVR 'CDA failed' and declines (Book 4 §6.3.2)."""
        try:
            if 0x9F4B not in values or self._oda.icc_key is None:
                raise OdaError("the card did not sign its GENERATE AC answer")
            objects = b"".join(bytes(t) for t in tlv.decode(response)[0].children if t.tag != 0x9F4B)
            cdol2 = self._dol_data.get(0x8D) if dol_tag == 0x8D else None
            digest = oda.transaction_data_hash(self._dol_data.get(0x9F38, b""), self._dol_data[0x8C], cdol2,
                                               objects)
            result = oda.verify_cda_signature(self._oda.icc_key, values[0x9F4B], self._terminal[0x9F37],
                                              cid=values[0x9F27][0], transaction_hash=digest)
        except (OdaError, RemoteProtocolError, IndexError) as exc:
            self._tvr.set(FAILED_BIT[OdaMethod.CDA])
            self._oda.failed = True
            raise Stop(Outcome.DECLINED, KernelReason.CDA_FAILED,
                       f"declined: combined DDA/AC generation failed ({exc})") from exc
        self._card[0x9F26] = result.cryptogram
        self._card[0x9F4C] = result.icc_dynamic_number

    def _go_online(self, pan: str) -> GoOnline:
        values = self._values()
        icc_data = tlv.encode(tlv.Tlv(tag, values[tag]) for tag in FIELD_55_TAGS if tag in values)
        track2 = self._card.get(0x57)
        return GoOnline(icc_data=icc_data, pan=pan, pan_sequence=records.psn_digits(self._card.get(0x5F34)),
                        expiry_yymm=self._card[0x5F24].hex()[:4], track2=track2)

    def _complete(self, answer: _HostAnswer) -> Step[Finished]:
        """Issuer authentication and the second GENERATE AC (Book 3 §10.9, §9.2)."""
        code = answer.response_code
        self._host_approved = code in APPROVAL_CODES
        self._issuer[0x8A] = UNABLE_TO_GO_ONLINE_DECLINED if code is None else code.encode("ascii")
        try:
            issuer = tlv.flatten(tlv.decode(answer.issuer_data))
        except RemoteProtocolError:
            issuer = {}  # garbage from the host: continue without issuer authentication data
        if code is not None and 0x91 in issuer:
            self._issuer[0x91] = issuer[0x91]
            yield from self._authenticate_issuer(issuer[0x91])
        yield from self._scripts(answer.issuer_data, 0x71)  # Book 3 §10.10: before the final GENERATE AC
        requested = CryptogramType.TC if self._host_approved else CryptogramType.AAC
        if code is None and self._config.approve_offline_when_unable_online:
            requested, _ = default_action(bytes(self._tvr), self._card, tac_default=self._aid.tac_default)
            if requested is CryptogramType.TC:
                self._issuer[0x8A] = UNABLE_TO_GO_ONLINE_APPROVED
        returned = yield from self._generate_ac(requested, 0x8D, "second")
        yield from self._scripts(answer.issuer_data, 0x72)  # ... and after it
        if returned is CryptogramType.TC:
            if code is None:
                return self._finish(Outcome.APPROVED, KernelReason.APPROVED_UNABLE_ONLINE,
                                    "unable to go online: approved offline by default action (Y3)")
            return self._finish(Outcome.APPROVED, KernelReason.APPROVED_ONLINE, f"approved online ({code})")
        if self._host_approved:
            return self._finish(Outcome.DECLINED_AFTER_ONLINE_APPROVAL, KernelReason.CARD_DECLINED_AFTER_APPROVAL,
                                f"host approved ({code}) but the card declined (AAC at second GENERATE AC)")
        if code is None:
            return self._finish(Outcome.DECLINED, KernelReason.DECLINED_UNABLE_ONLINE,
                                "unable to go online: declined offline (Z3)")
        return self._finish(Outcome.DECLINED, KernelReason.DECLINED_BY_HOST, f"declined by the host ({code})")

    def _scripts(self, issuer_data: bytes, template: int) -> Step[None]:
        scripts = parse_scripts(issuer_data, template)
        if scripts:
            results = yield from run_scripts(scripts, template, self._tvr, self._tsi)
            self._issuer[0x9F5B] = self._issuer.get(0x9F5B, b"") + results

    def _authenticate_issuer(self, issuer_authentication_data: bytes) -> Step[None]:
        """EXTERNAL AUTHENTICATE when the AIP asks for it and CDOL2 does not carry ``91`` (Book 3 §10.9)."""
        in_cdol2 = any(e.tag == 0x91 for e in dol.parse(self._card[0x8D]))
        if not in_cdol2 and self._aip(AipBit.ISSUER_AUTHENTICATION_SUPPORTED):
            if 8 <= len(issuer_authentication_data) <= 16:
                command = apdu.external_authenticate(issuer_authentication_data)
                response = yield from transmit(command, "EXTERNAL AUTHENTICATE")
                if not response.ok:
                    self._tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
            else:
                self._tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
            self._tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
        elif in_cdol2:
            self._tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
