"""Composition root: the one place that chooses an implementation for every port.

``build_services(settings)`` opens the journal, the serial devices and the network clients named in the
configuration and wires them into the flows. Nothing else in the product constructs a driver.

>>> build_services.__name__
'build_services'
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from drivers import crashpoint
from drivers.card_reader import CardReader
from drivers.carrier import CarrierClient, read_app_secret
from drivers.host.client import HostClient
from drivers.host.counters import HostView, behind
from drivers.host.header import FrameHeader
from drivers.host.tls import client_context
from drivers.host.tmk import load_tmk
from drivers.pinpad import KeyLoad, KeyStatus, PinPad
from drivers.printer import EscPosPrinter
from drivers.scanner import Scanner
from drivers.wallet import WalletClient
from emv.capk import SHIPPED_CAPKS, retired
from emv.config import TerminalConfig, terminal_config, trusted_capks
from flows.ports import WalletPort
from flows.saf import PanSealer, offline_row
from pos_errors import ConfigError, DeviceError, PosError
from terminal.audit import AuditLog
from terminal.config import Settings
from terminal.config_wallets import check_wallet_platform, wallet_platform_channels
from terminal.device_secret import chain_key, read_device_secret, sealing_key
from terminal.journal import Journal
from terminal.secret_file import create_private
from terminal.services import OnFirstUse, Services, SystemClock
from terminal.users import UserStore

if TYPE_CHECKING:  # the payment flows and EMV kernels are imported when the payment services are first built
    from emv.capk import Capk
    from flows.card_payment import CardPaymentSettings
    from flows.contactless_payment import TapSettings
    from flows.topup import TopupService
    from flows.wallet_payment import WalletTopupService

__all__ = ["build_services", "emv_config", "KeyLoadRequest", "KeyStatus", "load_initial_key", "START_CHECKS",
           "run_start_checks", "check_start"]

log = logging.getLogger("terminal.wiring")


def emv_config(settings: Settings) -> TerminalConfig:
    """The kernel's configuration; CA keys expired by today are left out (and said in the log)."""
    term, today, section = settings.terminal, dt.date.today(), asdict(settings.emv)
    for capk in retired(trusted_capks(section, term.profile), today):  # withdrawn at expiry (EMV Book 2 §5.1)
        shipped = capk.key in SHIPPED_CAPKS and SHIPPED_CAPKS[capk.key] == capk
        log.log(logging.INFO if shipped else logging.WARNING, "CA public key %s/%02X expired on 20%s: not trusted",
                capk.rid.hex().upper(), capk.index, capk.expiry)
    return terminal_config(section, terminal_id=term.id, merchant_id=term.merchant_id,
                           ifd_serial=term.id, profile=term.profile, today=today)


def _transcript_writer(directory: str) -> Callable[[str, str], None] | None:
    """Saves card-session transcripts (already PAN-masked) as DIR/NAME.json; a write failure is only logged."""
    if not directory:
        return None

    def write(name: str, text: str) -> None:
        try:
            path = create_private(Path(directory) / f"{name}.json")  # 0600 in a 0700 directory
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            log.warning("transcript %s not saved: %s", name, exc)

    return write


def build_services(settings: Settings) -> Services:
    term, dev = settings.terminal, settings.devices
    checked = run_start_checks(settings)  # every refusal the file can cause, before anything opens (START_CHECKS)
    # the SAF sealing key comes from the device secret, never from beside the journal
    secret: bytes = checked["device secret"]
    seal_key = sealing_key(secret, term.id)
    # the seal chain's key too: a key never sits beside the data it protects
    journal = Journal(term.journal, crash_point=crashpoint.reached, chain_key=chain_key(secret, term.id))
    users = UserStore(journal, lock_s=settings.security.lock_s, max_failed=settings.security.max_failed)
    for user in settings.users:
        try:
            users.ensure(user.id, user.name, user.role, user.password_hash)
        except PosError as exc:  # storage full or failing: the terminal still starts, out of service, and says so
            log.error("user %s not stored: %s", user.id, exc)
    clock = SystemClock()
    carrier: CarrierClient = checked["carrier"]
    host: HostClient = checked["acquirer link"](journal)  # STAN and batch from the journal
    reader = CardReader(dev.reader, baud=dev.reader_baud)
    pinpad = PinPad(dev.pinpad, baud=dev.pinpad_baud)
    if settings.host.pin_key == "pik":  # format 0 under the sign-on PIK, which only the PIN pad deciphers
        pinpad.use_working_key(host.pin_key)
    if settings.host.key_scheme == "dukpt":  # MACs under the PIN pad's DUKPT transaction keys, no sign-on
        host.use_dukpt_mac(pinpad)
    host.on_host_view = partial(follow_host_view, journal)  # sign-on and echo answers carry the host's counters
    printer = EscPosPrinter(dev.printer, baud=dev.printer_baud)
    scanner = Scanner(dev.scanner, baud=dev.scanner_baud, mode=checked["scanner"])
    closers = [host.sign_off]  # 签退 on shutdown (best effort: Services.close ignores a link error); runs last
    closers[:0] = [host.close, carrier.close]  # then the kept connections (issue 17)
    for name, device in (("card reader", reader), ("PIN pad", pinpad), ("printer", printer),
                         ("scanner", scanner)):
        try:
            device.open()
        except DeviceError as exc:  # the self-test and the first use report it to the cashier
            log.warning("%s not available at start: %s", name, exc)
        closers.append(device.close)
    sealer = PanSealer(seal_key, term.id)
    emv: TerminalConfig = checked["emv"]  # a wrong [emv] section stops the terminal at start, not at the first sale

    def card_topup() -> TopupService:  # built for the first card sale (issue 17 item 3: not on the boot path)
        from flows.card_payment import CardPaymentPorts
        from flows.topup import TopupService

        card = CardPaymentPorts(reader=reader, pinpad=pinpad, host=host, journal=journal, clock=clock,
                                random_bytes=os.urandom)
        card_settings = _card_settings(settings, emv, journal, sealer)
        return TopupService(carrier, card, card_settings, status_polls=settings.carrier.status_polls,
                            poll_interval_s=settings.carrier.poll_interval_s,
                            tap=(reader, tap_settings(settings, card_settings.emv.capks))
                            if settings.contactless.enabled else None)

    w = settings.wallet
    wallet: WalletClient | None = checked["wallet platform"]
    if wallet is not None:
        closers.append(wallet.close)
    wallets = {**(dict.fromkeys(("wechat", "alipay", "emvqr"), wallet) if wallet is not None else {}),
               **checked["wallet merchant APIs"]}  # WeChat Pay / Alipay on their own APIs when configured

    def wallet_topup() -> WalletTopupService:  # built for the first wallet sale, or to recover an open wallet row
        from flows.wallet_payment import WalletSettings, WalletTopupService

        wallet_settings = WalletSettings(terminal_id=term.id, merchant_id=term.merchant_id,
                                         merchant_name=_qr_name(term.merchant_name), city=w.merchant_city,
                                         mcc=w.mcc, account_gui=w.account_gui, poll_interval_s=w.poll_interval_s,
                                         merchant_timeout_s=w.merchant_timeout_s, qr_expiry_s=w.qr_expiry_s)
        return WalletTopupService(wallets, carrier, journal, clock, wallet_settings)

    return Services(settings=settings, journal=journal, users=users, carrier=carrier, host=host, reader=reader,
                    pinpad=pinpad, printer=printer, card_topup=OnFirstUse(card_topup), closers=closers,
                    scanner=scanner, wallet=wallet, wallet_payments=OnFirstUse(wallet_topup) if wallets else None,
                    audit=AuditLog(journal), saf_sealer=sealer, tap_offered=settings.contactless.enabled)


def _card_settings(settings: Settings, emv: TerminalConfig, journal: Journal,
                   sealer: PanSealer) -> CardPaymentSettings:
    from flows.card_payment import CardPaymentSettings

    term = settings.terminal
    return CardPaymentSettings(emv=emv, terminal_id=term.id, merchant_id=term.merchant_id,
                               card_timeout_s=settings.timeouts.card_s, pin_timeout_s=settings.timeouts.pin_s,
                               transcript_sink=_transcript_writer(settings.emv.transcripts_dir),
                               offline_approved=lambda txn_id, advice: journal.saf_offline_approved(
                                   txn_id, offline_row(advice, sealer)))


def _host_security(settings: Settings) -> dict[str, Any]:
    """TLS context, server name and TMK of the acquirer link (``[host]``); ConfigError names a wrong key."""
    h = settings.host
    if h.key_scheme not in ("master_session", "none", "dukpt"):
        raise ConfigError(f"host.key_scheme must be 'master_session', 'dukpt' or 'none', not {h.key_scheme!r}")
    if h.pin_key not in ("dukpt", "pik") or (h.pin_key == "pik" and h.key_scheme != "master_session"):
        raise ConfigError(f"host.pin_key must be 'dukpt', or 'pik' with host.key_scheme = 'master_session', "
                          f"not {h.pin_key!r}")
    if h.insecure_plaintext:
        log.warning("host.insecure_plaintext = true: the acquirer link is PLAIN TCP — test benches only")
        tls = None
    else:
        tls = client_context(h.ca_file, h.client_cert, h.client_key)
    if h.key_scheme == "none":
        log.warning("host.key_scheme = none: acquirer messages carry no MAC — test benches only")
    allow_clear = settings.terminal.profile == "test"  # a clear TMK: test benches only
    tmk = (load_tmk(h.tmk_file, h.tmk_kbpk_file, allow_clear=allow_clear) if h.key_scheme == "master_session"
           else None)
    return {"tls": tls, "server_name": h.server_name or None, "tmk": tmk,
            "header": FrameHeader.from_config(h.tpdu, h.app_header)}


def _scanner_mode(mode: str) -> Literal["triggered", "continuous"]:
    if mode not in ("triggered", "continuous"):
        raise ConfigError(f"devices.scanner_mode must be 'triggered' or 'continuous', not {mode!r}")
    return "triggered" if mode == "triggered" else "continuous"


def _qr_name(merchant_name: str) -> str:
    """The QR's merchant name (ID 59, up to 25 characters): the English part of the bilingual name."""
    return merchant_name.split(" / ", maxsplit=1)[0][:25] or "MERCHANT"


@dataclass(frozen=True)
class KeyLoadRequest:
    """A new initial PIN key for the pad (``terminal.load_pin_key``): a TR-31 key block wrapped under the pad's
    key block protection key, and the check value from the key custodian's form (3 bytes, or empty)."""

    key_block: str
    kcv: bytes = b""


def load_initial_key(port: str, request: KeyLoadRequest,
                     check: Callable[[KeyStatus], None] | None = None) -> tuple[KeyStatus, bytes]:
    """Open the PIN pad at ``port``; ``check`` sees its key status first and may raise to send nothing; then
    load ``request`` (the pad unwraps and checks it). (new key status, its check value); PosError on failure."""
    with PinPad(port) as pad:
        if check is not None:
            check(pad.key_status())
        return pad.load_initial_key(KeyLoad(request.key_block, request.kcv))


def _merchant_platforms(settings: Settings) -> dict[str, WalletPort]:
    """WeChat Pay and Alipay on their own merchant APIs when configured ([wechatpay] appid, [alipay] app_id); the
    other offered channels (and EMV QR always) go through the [wallet] platform."""
    ports: dict[str, WalletPort] = {}
    wx, ali, term = settings.wechatpay, settings.alipay, settings.terminal
    if not (wx.appid or ali.app_id):
        return ports
    from drivers.merchant_keys import alipay_client, wechatpay_client  # their XML and RSA code: only when configured

    if wx.appid:
        ports["wechat"] = wechatpay_client(
            url=wx.url, appid=wx.appid, mch_id=wx.mch_id, api_key_file=wx.api_key_file,
            client_cert_file=wx.client_cert_file, client_key_file=wx.client_key_file, ca_file=wx.ca_file,
            insecure_plaintext=wx.insecure_plaintext, timeout_s=wx.timeout_s, spbill_create_ip=wx.spbill_create_ip,
            notify_url=wx.notify_url, terminal_id=term.id, crash_point=crashpoint.reached,
            keep_alive_s=wx.keep_alive_s)
    if ali.app_id:
        ports["alipay"] = alipay_client(
            url=ali.url, app_id=ali.app_id, app_private_key_file=ali.app_private_key_file,
            alipay_public_key_file=ali.alipay_public_key_file, ca_file=ali.ca_file,
            insecure_plaintext=ali.insecure_plaintext, timeout_s=ali.timeout_s, terminal_id=term.id,
            crash_point=crashpoint.reached, keep_alive_s=ali.keep_alive_s)
    return ports


def tap_settings(settings: Settings, capks: Mapping[tuple[bytes, int], Capk]) -> TapSettings:
    """The reader's {AID, kernel} combinations (Book B §3.1.1) with the ``[contactless]`` limits."""
    from emv.contactless import Combination, ReaderLimits
    from flows.contactless_payment import TapSettings

    cl = settings.contactless

    def limit(value: int) -> int | None:
        return None if value < 0 else value

    def limits(rid: str) -> ReaderLimits:
        own = cl.limits_for(rid)
        return ReaderLimits(contactless_limit=limit(own["limit_minor"]), floor_limit=limit(own["floor_limit_minor"]),
                            cvm_required_limit=limit(own["cvm_required_limit_minor"]),
                            status_check=own["status_check"])

    combos = tuple(Combination(bytes.fromhex(aid), kernel, limits(aid)) for aid, kernel in TAP_COMBINATIONS)
    return TapSettings(combos, capks, tap_timeout_s=cl.tap_timeout_s, presentations=cl.presentations,
                       country=bytes.fromhex(settings.emv.country_code),
                       currency=bytes.fromhex(settings.emv.currency_code))


TAP_COMBINATIONS = (("A000000333", 7), ("A000000003", 3), ("A000000004", 2))  # UnionPay, Visa, Mastercard


def follow_host_view(journal: Journal, view: HostView) -> None:
    """The host's view of our counters (sign-on, echo: ``drivers.host.counters``): a STAN, batch or invoice
    behind it — a journal restored from an old backup — continues from it, audited (issue 15 item 2). The view
    is ahead in sequence order, so it is taken as it is: after a wrap (the host at 000002, a journal restored
    at 999997) it is numerically smaller, and "at least" would have left the journal reusing the host's STANs."""
    ahead = journal.follow_counters(  # read and written in one unit, audited in the same commit
        partial(behind, view), lambda ahead: AuditLog(journal).record(
            "-", "counters_from_host", " ".join(f"{k}={v:06d}" for k, v in ahead.items())))
    if ahead:
        log.warning("counters behind the host's view, advanced to %s", ahead)


# --- start checks: every refusal the configuration can cause, run before anything opens -------------------------
# build_services runs them and uses what they made; pos-terminal --check-config runs the same list (one list: the
# two cannot drift apart). A check reads files and builds clients; it opens no device, socket or journal.


def _device_secret(settings: Settings) -> bytes:
    sec = settings.security
    return read_device_secret(sec.device_secret_file, sec.device_secret_env, journal=settings.terminal.journal)


def _carrier_client(settings: Settings) -> CarrierClient:
    c = settings.carrier
    return CarrierClient(c.url, app_id=c.app_id, app_secret=read_app_secret(c.app_secret_file), ca_file=c.ca_file,
                         insecure_plaintext=c.insecure_plaintext, timeout_s=c.timeout_s,
                         terminal_id=settings.terminal.id, crash_point=crashpoint.reached,
                         keep_alive_s=c.keep_alive_s)


def _wallet_client(settings: Settings) -> WalletClient | None:
    """The [wallet] platform when an offered channel pays through it (or it is set up anyway), else None."""
    w = settings.wallet
    needed = wallet_platform_channels(w.channels, wechat_appid=settings.wechatpay.appid,
                                      alipay_app_id=settings.alipay.app_id)
    if not (needed or w.app_secret_file):
        return None
    return WalletClient(w.url, app_id=w.app_id, app_secret=read_app_secret(w.app_secret_file, "wallet"),
                        ca_file=w.ca_file, insecure_plaintext=w.insecure_plaintext, timeout_s=w.timeout_s,
                        terminal_id=settings.terminal.id, crash_point=crashpoint.reached,
                        keep_alive_s=w.keep_alive_s)


def _host_client(settings: Settings) -> Callable[[Journal | None], HostClient]:
    """The acquirer client: its TLS files and TMK (``_host_security``) and its own checks (ids, time-outs,
    keep-alive) run now, on a client made without the journal; the function returned makes the terminal's, with
    the journal's STAN and batch."""
    h, term, security = settings.host, settings.terminal, _host_security(settings)

    def make(journal: Journal | None) -> HostClient:
        return HostClient(h.address, h.port, timeout_s=h.timeout_s, connect_timeout_s=h.connect_timeout_s,
                          terminal_id=term.id, merchant_id=term.merchant_id,
                          next_stan=journal.next_stan if journal is not None else None,
                          batch_number=journal.current_batch() if journal is not None else 1,
                          crash_point=crashpoint.reached, keep_alive_s=h.keep_alive_s, **security)

    make(None).close()  # nothing connected: a client connects at its first exchange
    return make


START_CHECKS: tuple[tuple[str, Callable[[Settings], Any]], ...] = (
    ("wallet channels", check_wallet_platform),  # credentials only when an offered channel needs them
    ("device secret", _device_secret),
    ("carrier", _carrier_client),
    ("acquirer link", _host_client),
    ("scanner", lambda s: _scanner_mode(s.devices.scanner_mode)),
    ("wallet platform", _wallet_client),
    ("wallet merchant APIs", _merchant_platforms),
    ("emv", emv_config),
)


def run_start_checks(settings: Settings) -> dict[str, Any]:
    """Every start check in order, by name → what it made; the first refusal raises (PosError, mostly
    ConfigError naming the key), as ``pos-terminal`` does at start."""
    return {name: check(settings) for name, check in START_CHECKS}


def check_start(settings: Settings) -> list[tuple[str, str]]:
    """(check, problem) for every start check that refuses — all of them, not only the first — for
    ``pos-terminal --check-config``; an empty list when the terminal would start. Clients a check built are
    closed again (none has connected)."""
    problems: list[tuple[str, str]] = []
    for name, check in START_CHECKS:
        try:
            made = check(settings)
        except PosError as exc:
            problems.append((name, str(exc)))
            continue
        for client in made.values() if isinstance(made, dict) else (made,):
            close = getattr(client, "close", None)
            if callable(close):
                close()
    return problems
