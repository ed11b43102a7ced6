"""MCUboot's image layout as ``construct`` structures: header, TLV info headers, TLV entries, trailer magic.

Everything is little-endian, as ``imgtool`` writes by default (MCUboot ``bootutil/image.h``)::

    offset  size  field
    0x00    4     ih_magic             0x96f3b83d
    0x04    4     ih_load_addr
    0x08    2     ih_hdr_size          payload starts here (header + zero padding)
    0x0a    2     ih_protect_tlv_size  protected TLV area incl. its 4-byte info header, 0 when absent
    0x0c    4     ih_img_size          payload length
    0x10    4     ih_flags
    0x14    8     ih_ver               major u8, minor u8, revision u16, build_num u32
    0x1c    4     _pad1
    then payload, [protected TLV info 0x6908 + TLVs], TLV info 0x6907 + TLVs (SHA-256, key hash, signature)

Standard TLVs carry an 8-bit type and a zero pad byte (``BBH``); vendor TLVs (0x00a0–0xfffe, our device class and
build information) a 16-bit type (``HH``): both read the same as a little-endian u16 type.

>>> HEADER.parse(HEADER.build(dict(load_addr=0, hdr_size=32, protect_tlv_size=0, img_size=5, flags=0,
...     version=dict(major=1, minor=2, revision=3, build=4)))).version.minor
2
"""

from __future__ import annotations

from construct import Bytes, Const, GreedyRange, Int8ul, Int16ul, Int32ul, Padding, Struct, this

__all__ = [
    "IMAGE_MAGIC", "TLV_INFO_MAGIC", "TLV_PROT_INFO_MAGIC", "HEADER_SIZE", "HEADER", "TLV_INFO", "TLV", "TLV_LIST",
    "TLV_KEYHASH", "TLV_PUBKEY", "TLV_SHA256", "TLV_ECDSA_SIG", "TLV_ED25519", "TLV_SEC_CNT", "TLV_DEVICE_CLASS",
    "TLV_BUILD_INFO", "BOOT_MAGIC", "VENDOR_TLV_MIN",
]

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
HEADER_SIZE = 32

TLV_KEYHASH = 0x01
TLV_PUBKEY = 0x02
TLV_SHA256 = 0x10
TLV_ECDSA_SIG = 0x22
TLV_ED25519 = 0x24
TLV_SEC_CNT = 0x50
VENDOR_TLV_MIN = 0x00A0
TLV_DEVICE_CLASS = 0x00A0  # ours: UTF-8 device-class id, e.g. "iotsim-pos-v1"
TLV_BUILD_INFO = 0x00A1  # ours: JSON build information (payload manifest digest, source tree)

# MCUboot's boot_img_magic for max write alignment 8 (bootutil_public.c); written last in a trailer.
BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")

VERSION = Struct("major" / Int8ul, "minor" / Int8ul, "revision" / Int16ul, "build" / Int32ul)

HEADER = Struct(
    "magic" / Const(IMAGE_MAGIC, Int32ul),
    "load_addr" / Int32ul,
    "hdr_size" / Int16ul,
    "protect_tlv_size" / Int16ul,
    "img_size" / Int32ul,
    "flags" / Int32ul,
    "version" / VERSION,
    Padding(4),
)

TLV_INFO = Struct("magic" / Int16ul, "total" / Int16ul)  # total includes these 4 bytes

TLV = Struct("type" / Int16ul, "length" / Int16ul, "value" / Bytes(this.length))
TLV_LIST = GreedyRange(TLV)
