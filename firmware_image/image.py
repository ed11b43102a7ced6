"""Build, parse and verify MCUboot images (the same bytes ``imgtool sign`` writes and ``imgtool verify`` accepts).

Verification says *why* an image is refused, with one reason per failure class: ``malformed``, ``tampered``,
``unsigned``, ``wrong-key``, ``downgrade``, ``wrong-device-class``.

Policy comes from signed bytes only, as MCUboot does it (``bootutil_img_validate`` with
``MCUBOOT_USE_TLV_ALLOW_LIST`` and ``MCUBOOT_HW_ROLLBACK_PROT``): the security counter, device class and build
information are read from the *protected* TLV area alone; the unprotected area may hold only the hash, the key
(hash) and the signature; a TLV type may appear once; no byte may follow the TLV area; and a verifier given a
minimum counter or a device class requires that TLV (a counter is exactly 4 bytes).

>>> from firmware_image.keys import generate
>>> key = generate()
>>> blob = make_image(b"app", version=Version.parse("1.2.3+4"), key=key, security_counter=7,
...                   device_class="demo")
>>> info = verify_image(blob, [key], device_class="demo", min_counter=7)
>>> str(info.version), info.security_counter, info.payload
('1.2.3+4', 7, b'app')
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from construct import ConstructError

from firmware_image.errors import FirmwareImageError
from firmware_image.keys import PrivateKey, PublicKey, key_hash, public_der, sign, signature_tlv, verify_signature
from firmware_image.layout import (
    HEADER,
    HEADER_SIZE,
    IMAGE_MAGIC,
    TLV,
    TLV_BUILD_INFO,
    TLV_DEVICE_CLASS,
    TLV_ECDSA_SIG,
    TLV_ED25519,
    TLV_INFO,
    TLV_INFO_MAGIC,
    TLV_KEYHASH,
    TLV_LIST,
    TLV_PROT_INFO_MAGIC,
    TLV_PUBKEY,
    TLV_SEC_CNT,
    TLV_SHA256,
)

__all__ = ["Version", "ImageInfo", "make_image", "parse_image", "verify_image", "REASONS"]

REASONS = ("malformed", "tampered", "unsigned", "wrong-key", "downgrade", "wrong-device-class")
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\+(\d+))?$")
_TLV_NAMES = {TLV_KEYHASH: "KEYHASH", TLV_PUBKEY: "PUBKEY", TLV_SHA256: "SHA256", TLV_ECDSA_SIG: "ECDSASIG",
              TLV_ED25519: "ED25519", TLV_SEC_CNT: "SEC_CNT", TLV_DEVICE_CLASS: "DEVICE_CLASS",
              TLV_BUILD_INFO: "BUILD_INFO"}
_UNPROTECTED_ALLOWED = frozenset({TLV_KEYHASH, TLV_PUBKEY, TLV_SHA256, TLV_ECDSA_SIG, TLV_ED25519})


@dataclass(frozen=True, order=True)
class Version:
    """``major.minor.revision+build`` as in ``imgtool --version``."""

    major: int
    minor: int = 0
    revision: int = 0
    build: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise FirmwareImageError(f"version {text!r} is not major.minor.revision+build, e.g. 1.4.0+12")
        parts = [int(g) if g else 0 for g in match.groups()]
        limits = (0xFF, 0xFF, 0xFFFF, 0xFFFFFFFF)
        if any(p > lim for p, lim in zip(parts, limits, strict=True)):
            raise FirmwareImageError(f"version {text!r} out of range (255.255.65535+4294967295 at most)")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


@dataclass(frozen=True)
class ImageInfo:
    version: Version
    header_size: int
    load_addr: int
    flags: int
    payload: bytes
    protected: list[tuple[int, bytes]]
    unprotected: list[tuple[int, bytes]]
    hashed_region: bytes = field(repr=False)
    total_size: int = 0

    def tlv(self, kind: int) -> bytes | None:
        """A TLV of the unprotected area (hash, key hash, signature), else of the protected one."""
        return next((v for t, v in self.unprotected + self.protected if t == kind), None)

    def protected_tlv(self, kind: int) -> bytes | None:
        """A TLV of the protected (signed) area only: the one source of policy."""
        return next((v for t, v in self.protected if t == kind), None)

    @property
    def security_counter(self) -> int:
        """The protected security counter; 0 when absent (``has_counter`` says which)."""
        raw = self.protected_tlv(TLV_SEC_CNT)
        return int.from_bytes(raw, "little") if raw and len(raw) == 4 else 0

    @property
    def has_counter(self) -> bool:
        raw = self.protected_tlv(TLV_SEC_CNT)
        return raw is not None and len(raw) == 4

    @property
    def device_class(self) -> str | None:
        raw = self.protected_tlv(TLV_DEVICE_CLASS)
        return raw.decode("utf-8", "replace") if raw is not None else None

    @property
    def build_info(self) -> dict[str, Any]:
        raw = self.protected_tlv(TLV_BUILD_INFO)
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    @property
    def sha256(self) -> bytes | None:
        return self.tlv(TLV_SHA256)

    def tlv_names(self) -> list[tuple[str, str, int]]:
        """(area, name, length) rows for ``pos-fw info``."""
        return ([("protected", _name(t), len(v)) for t, v in self.protected]
                + [("unprotected", _name(t), len(v)) for t, v in self.unprotected])


def _tlv_area(magic: int, entries: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(TLV.build(dict(type=t, length=len(v), value=v)) for t, v in entries)
    return TLV_INFO.build(dict(magic=magic, total=len(body) + 4)) + body


def make_image(payload: bytes, *, version: Version, key: PrivateKey | None, security_counter: int,
               device_class: str, build_info: dict[str, Any] | None = None, header_size: int = HEADER_SIZE,
               load_addr: int = 0) -> bytes:
    """A complete signed image (unsigned when ``key`` is None: hash TLV only, as ``imgtool sign`` without a key)."""
    if header_size < HEADER_SIZE:
        raise FirmwareImageError(f"header size must be at least {HEADER_SIZE}")
    protected = [(TLV_SEC_CNT, security_counter.to_bytes(4, "little")),
                 (TLV_DEVICE_CLASS, device_class.encode())]
    if build_info:
        protected.append((TLV_BUILD_INFO, json.dumps(build_info, sort_keys=True, separators=(",", ":")).encode()))
    prot_area = _tlv_area(TLV_PROT_INFO_MAGIC, protected)
    header = HEADER.build(dict(load_addr=load_addr, hdr_size=header_size, protect_tlv_size=len(prot_area),
                               img_size=len(payload), flags=0, version=vars(version)))
    region = header + bytes(header_size - HEADER_SIZE) + payload + prot_area
    unprotected = [(TLV_SHA256, hashlib.sha256(region).digest())]
    if key is not None:
        unprotected += [(TLV_KEYHASH, key_hash(key)), (signature_tlv(key), sign(key, region))]
    return region + _tlv_area(TLV_INFO_MAGIC, unprotected)


def _parse_area(data: bytes, offset: int, magic: int) -> tuple[list[tuple[int, bytes]], int]:
    info = TLV_INFO.parse(data[offset:offset + 4])
    if info.magic != magic or info.total < 4 or offset + info.total > len(data):
        raise FirmwareImageError(f"TLV area at 0x{offset:x} is damaged (magic 0x{info.magic:04x})")
    entries = TLV_LIST.parse(data[offset + 4:offset + info.total])
    if sum(4 + e.length for e in entries) != info.total - 4:
        raise FirmwareImageError(f"TLV area at 0x{offset:x} does not add up")
    return [(e.type, bytes(e.value)) for e in entries], offset + info.total


def parse_image(data: bytes) -> ImageInfo:
    """Split an image into its parts; raises ``FirmwareImageError('malformed')`` when it is not one."""
    if len(data) < HEADER_SIZE or int.from_bytes(data[:4], "little") != IMAGE_MAGIC:
        raise FirmwareImageError("not an MCUboot image (no 0x96f3b83d magic at offset 0)")
    try:
        hdr = HEADER.parse(data[:HEADER_SIZE])
        body_end = hdr.hdr_size + hdr.img_size
        if hdr.hdr_size < HEADER_SIZE or body_end + 4 > len(data):
            raise FirmwareImageError(f"header sizes ({hdr.hdr_size} + {hdr.img_size}) run past the image end")
        protected: list[tuple[int, bytes]] = []
        offset = body_end
        if hdr.protect_tlv_size:
            protected, offset = _parse_area(data, body_end, TLV_PROT_INFO_MAGIC)
            if offset - body_end != hdr.protect_tlv_size:
                raise FirmwareImageError("protected TLV size in the header disagrees with the TLV area")
        unprotected, end = _parse_area(data, offset, TLV_INFO_MAGIC)
        if end != len(data):
            raise FirmwareImageError(f"{len(data) - end} bytes follow the TLV area at 0x{end:x}: an image ends "
                                     "with its TLVs (strip the padding or the appended data)")
        _refuse_duplicates(protected + unprotected)
    except ConstructError as exc:
        raise FirmwareImageError(f"image structure unreadable: {exc}") from exc
    except FirmwareImageError:
        raise
    version = Version(hdr.version.major, hdr.version.minor, hdr.version.revision, hdr.version.build)
    return ImageInfo(version, hdr.hdr_size, hdr.load_addr, hdr.flags, bytes(data[hdr.hdr_size:body_end]),
                     protected, unprotected, bytes(data[:offset]), end)


def verify_image(data: bytes, keys: list[PrivateKey | PublicKey], *, device_class: str | None = None,
                 min_counter: int | None = None) -> ImageInfo:
    """The parsed image if it is intact, signed by one of ``keys``, for this device and not a downgrade.

    Raises:
        FirmwareImageError: with ``.reason`` one of ``REASONS`` and a message saying what to do.
    """
    info = parse_image(data)
    stray = [t for t, _ in info.unprotected if t not in _UNPROTECTED_ALLOWED]
    if stray:
        raise FirmwareImageError(f"image is tampered: {_name(stray[0])} TLV in the unprotected area, which only "
                                 "the hash, key and signature may use (it was added after signing)", "tampered")
    if info.sha256 is None:
        raise FirmwareImageError("image has no SHA-256 TLV: it was damaged or not made by imgtool/pos-fw")
    if hashlib.sha256(info.hashed_region).digest() != info.sha256:
        raise FirmwareImageError("image is tampered: its SHA-256 does not match (a byte was changed); rebuild it",
                                 "tampered")
    sig_types = (TLV_ED25519, TLV_ECDSA_SIG)
    signatures = [(t, v) for t, v in info.unprotected if t in sig_types]
    if not signatures:
        raise FirmwareImageError("image is unsigned: sign it with 'pos-fw sign --key KEY.pem'", "unsigned")
    for key in keys:
        for kind, sig in signatures:
            if kind == signature_tlv(key) and verify_signature(key, sig, info.hashed_region):
                named = info.tlv(TLV_KEYHASH) == key_hash(key) or info.tlv(TLV_PUBKEY) == public_der(key)
                if not named:  # MCUboot picks the key by this TLV (imgtool --public-key-format full: PUBKEY)
                    raise FirmwareImageError("image is tampered: its key hash TLV is missing or was changed",
                                             "tampered")
                return _check_policy(info, device_class, min_counter)
    hashes = {key_hash(k) for k in keys}
    if info.tlv(TLV_KEYHASH) in hashes:
        raise FirmwareImageError("image is tampered: the signature does not verify with the key it names",
                                 "tampered")
    shown = (info.tlv(TLV_KEYHASH) or b"").hex()[:16] or "none"
    raise FirmwareImageError(f"image is signed with a key this device does not trust (key hash {shown}…); "
                             "sign it with the device's key", "wrong-key")


def _name(kind: int) -> str:
    return _TLV_NAMES.get(kind, f"0x{kind:04x}")


def _refuse_duplicates(entries: list[tuple[int, bytes]]) -> None:
    seen: set[int] = set()
    for kind, _ in entries:
        if kind in seen:
            raise FirmwareImageError(f"TLV {_name(kind)} appears twice: an image carries each TLV once")
        seen.add(kind)


def _check_policy(info: ImageInfo, device_class: str | None, min_counter: int | None) -> ImageInfo:
    raw = info.protected_tlv(TLV_SEC_CNT)
    if raw is not None and len(raw) != 4:
        raise FirmwareImageError(f"security counter TLV is {len(raw)} bytes, not 4", "malformed")
    if min_counter is not None and not info.has_counter:
        raise FirmwareImageError("image has no security counter in its protected TLVs: this device checks "
                                 "rollback; sign it with --security-counter", "downgrade")
    if device_class is not None and info.device_class is None:
        raise FirmwareImageError(f"image names no device class in its protected TLVs: build it with "
                                 f"--device-class {device_class}", "wrong-device-class")
    if device_class is not None and info.device_class != device_class:
        raise FirmwareImageError(f"image is for device class {info.device_class!r}, this device is "
                                 f"{device_class!r}: build it with --device-class {device_class}",
                                 "wrong-device-class")
    if min_counter is not None and info.security_counter < min_counter:
        raise FirmwareImageError(f"image is a downgrade: security counter {info.security_counter} is below this "
                                 f"device's {min_counter}; build with --security-counter {min_counter} or higher",
                                 "downgrade")
    return info
