"""Signing keys as ``imgtool`` writes them (PKCS#8 / SubjectPublicKeyInfo PEM): Ed25519 by default, ECDSA P-256.

MCUboot signs the SHA-256 of header + payload + protected TLVs: Ed25519 signs those 32 digest bytes, ECDSA-P256
signs the region itself with SHA-256 (DER signature). The key hash TLV is SHA-256 of the DER public key.

>>> key = generate("ed25519")
>>> verify_signature(public_of(key), sign(key, b"region"), b"region")
True
"""

from __future__ import annotations

import getpass
import hashlib
import os
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from firmware_image.errors import KeyFileError
from firmware_image.layout import TLV_ECDSA_SIG, TLV_ED25519

__all__ = ["PrivateKey", "PublicKey", "KEY_TYPES", "generate", "load_key", "save_private", "public_pem",
           "public_of", "public_der", "key_hash", "sign", "verify_signature", "signature_tlv", "c_array", "rust_array",
           "PASSWORD_ENV"]

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
KEY_TYPES = ("ed25519", "ecdsa-p256")
PASSWORD_ENV = "POS_FW_KEY_PASSWORD"  # the passphrase of an encrypted key, for scripts (else it is asked for)


def generate(kind: str = "ed25519") -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise KeyFileError(f"unknown key type {kind!r}: use one of {', '.join(KEY_TYPES)}")


def save_private(key: PrivateKey, path: str | Path, *, password: bytes | None = None) -> None:
    """PKCS#8 PEM, mode 0600, never over an existing file; encrypted with ``password`` as ``imgtool keygen -p``."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def _password(path: str | Path) -> bytes:
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV].encode()
    if not sys.stdin.isatty():
        raise KeyFileError(f"{path} is encrypted: set {PASSWORD_ENV} or run on a terminal to be asked")
    return getpass.getpass(f"Passphrase for {path}: ").encode()


def load_key(path: str | Path) -> PrivateKey | PublicKey:
    """A private or a public key from a PEM file (as ``imgtool keygen`` writes it; an encrypted one asks for its
    passphrase, or takes it from ``POS_FW_KEY_PASSWORD``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        password = _password(path) if b"ENCRYPTED" in data else None
        key: object = (serialization.load_pem_public_key(data) if b"PUBLIC KEY" in data
                       else serialization.load_pem_private_key(data, password=password))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        hint = "wrong passphrase?" if b"ENCRYPTED" in data else "make one with 'pos-fw keygen'"
        raise KeyFileError(f"{path} is not a usable PEM key ({exc}); {hint}") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(f"{path}: ECDSA keys must be on P-256, not {key.curve.name}")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    raise KeyFileError(f"{path}: unsupported key type {type(key).__name__}; use Ed25519 or ECDSA P-256")


def public_of(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    return key


def public_der(key: PrivateKey | PublicKey) -> bytes:
    return public_of(key).public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    return public_of(key).public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hash(key: PrivateKey | PublicKey) -> bytes:
    return hashlib.sha256(public_der(key)).digest()


def signature_tlv(key: PrivateKey | PublicKey) -> int:
    return TLV_ED25519 if isinstance(public_of(key), ed25519.Ed25519PublicKey) else TLV_ECDSA_SIG


def sign(key: PrivateKey, region: bytes) -> bytes:
    """MCUboot's signature over the hashed region (header + payload + protected TLVs)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(hashlib.sha256(region).digest())
    return key.sign(region, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))  # reproducible builds


def verify_signature(key: PrivateKey | PublicKey, signature: bytes, region: bytes) -> bool:
    public = public_of(key)
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, hashlib.sha256(region).digest())
        else:
            # imgtool may pad ECDSA signatures with zeros to 72 bytes; the DER length byte tells the real size
            der = signature[:signature[1] + 2] if len(signature) > 2 else signature
            public.verify(der, region, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def c_array(key: PrivateKey | PublicKey, name: str = "pos_pub_key") -> str:
    """The public key as a C array, like ``imgtool getpub`` prints by default."""
    der = public_der(key)
    rows = [", ".join(f"0x{b:02x}" for b in der[i:i + 8]) for i in range(0, len(der), 8)]
    body = ",\n    ".join(rows)
    return f"const unsigned char {name}[] = {{\n    {body},\n}};\nconst unsigned int {name}_len = {len(der)};\n"


def rust_array(key: PrivateKey | PublicKey) -> str:
    """The public key as a Rust array, like ``imgtool getpub -e lang-rust``."""
    der = public_der(key)
    kind = "ED25519" if isinstance(public_of(key), ed25519.Ed25519PublicKey) else "ECDSA"
    rows = ",\n    ".join(", ".join(f"0x{b:02x}" for b in der[i:i + 8]) for i in range(0, len(der), 8))
    return f"static {kind}_PUB_KEY: &[u8] = &[\n    {rows},\n];\n"
