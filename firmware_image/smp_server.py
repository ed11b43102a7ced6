"""The device's SMP (mcumgr) server core (sans-I/O): one SMP message in, one answer out.

Messages are the ``smp`` package's definitions (header, CBOR bodies, error codes); what this module adds is the
device's behaviour. Groups served:

* OS management (0): echo, reset (answered, then ``ResetRequested``), MCUmgr parameters (``buf_size``,
  ``buf_count``), application info (the ``format`` letters ``snrvbmpioa``), bootloader info (``MCUboot``, and
  ``mode`` = direct-XIP with revert).
* Image management (1): state read/write, upload, erase (``firmware_image.smp_image``).

Errors follow the SMP spec: a request that cannot be decoded, an unknown field type, a wrong length →
``rc`` (``MGMT_ERR``: EINVAL, ENOTSUP for unknown groups and commands, UNSUPPORTED_TOO_NEW for SMP versions
above 2); a refusal of a group → version 2 ``err {group, rc}`` (version 1 requests get ``rc`` + ``rsn``).
Every refusal's full reason is also appended to ``notes`` (the device's log).

>>> from smp.os_management import EchoWriteRequest, EchoWriteResponse
>>> server = SmpServer(images=None, device_class="demo")
>>> EchoWriteResponse.loads(server.handle(EchoWriteRequest(d="hi", sequence=7).BYTES)).r
'hi'
"""

from __future__ import annotations

import platform
from collections import deque
from collections.abc import Callable
from typing import Any

import cbor2
from pydantic import ValidationError
from smp import header as smphdr
from smp import image_management as smpimg
from smp import os_management as smpos
from smp.error import MGMT_ERR
from smp.exceptions import SMPException
from smp.message import Request, Response

from firmware_image.agent import ResetRequested
from firmware_image.smp_image import ImageGroup, SmpRefused
from firmware_image.smp_serial import BUF_COUNT, BUF_SIZE

__all__ = ["SmpServer", "BUF_SIZE", "BUF_COUNT"]

_OS, _IMG = smphdr.GroupId.OS_MANAGEMENT, smphdr.GroupId.IMAGE_MANAGEMENT
_OSC, _IMGC = smphdr.CommandId.OSManagement, smphdr.CommandId.ImageManagement
_INFO_ORDER = "snrvbmpio"

Handler = Callable[[Any], dict[str, Any]]


class SmpServer:
    """SMP groups 0 and 1 for one device; ``images`` is None on a device without slots (OS group only)."""

    def __init__(self, images: ImageGroup | None, device_class: str, *, buf_size: int = BUF_SIZE) -> None:
        self.images = images
        self.device_class = device_class
        self.buf_size = buf_size
        self.notes: deque[str] = deque(maxlen=100)
        self._events: deque[ResetRequested] = deque()
        # (group, command, op) → (request class, response class, handler)
        self._table: dict[tuple[int, int, smphdr.OP], tuple[type[Request], type[Response], Handler]] = {
            (_OS, _OSC.ECHO, smphdr.OP.WRITE): (smpos.EchoWriteRequest, smpos.EchoWriteResponse,
                                                lambda r: {"r": r.d}),
            (_OS, _OSC.RESET, smphdr.OP.WRITE): (smpos.ResetWriteRequest, smpos.ResetWriteResponse, self._reset),
            (_OS, _OSC.MCUMGR_PARAMETERS, smphdr.OP.READ): (
                smpos.MCUMgrParametersReadRequest, smpos.MCUMgrParametersReadResponse,
                lambda r: {"buf_size": self.buf_size, "buf_count": BUF_COUNT}),
            (_OS, _OSC.OS_APPLICATION_INFO, smphdr.OP.READ): (
                smpos.OSApplicationInfoReadRequest, smpos.OSApplicationInfoReadResponse, self._info),
            (_OS, _OSC.BOOTLOADER_INFO, smphdr.OP.READ): (
                smpos.BootloaderInformationReadRequest, smpos.BootloaderInformationReadResponse,
                self._bootloader),
            (_IMG, _IMGC.STATE, smphdr.OP.READ): (smpimg.ImageStatesReadRequest, smpimg.ImageStatesReadResponse,
                                                  lambda r: {"images": self._images().states()}),
            (_IMG, _IMGC.STATE, smphdr.OP.WRITE): (smpimg.ImageStatesWriteRequest,
                                                   smpimg.ImageStatesWriteResponse, self._state_write),
            (_IMG, _IMGC.UPLOAD, smphdr.OP.WRITE): (smpimg.ImageUploadWriteRequest,
                                                    smpimg.ImageUploadWriteResponse,
                                                    lambda r: self._images().upload(r)),
            (_IMG, _IMGC.ERASE, smphdr.OP.WRITE): (smpimg.ImageEraseRequest, smpimg.ImageEraseResponse,
                                                   self._erase),
        }

    def next_event(self) -> ResetRequested | None:
        return self._events.popleft() if self._events else None

    def handle(self, message: bytes) -> bytes | None:
        """The answer to one SMP message (None: nothing to answer, e.g. a response sent to us)."""
        if len(message) < smphdr.Header.SIZE:
            self.notes.append(f"smp: {len(message)}-byte message is shorter than a header: dropped")
            return None
        raw = message[:smphdr.Header.SIZE]
        op, version = raw[0] & 0b111, (raw[0] >> 3) & 0b11
        group, sequence, command = int.from_bytes(raw[4:6], "big"), raw[6], raw[7]
        if op not in (smphdr.OP.READ, smphdr.OP.WRITE):
            return None
        answer_op = smphdr.OP.READ_RSP if op == smphdr.OP.READ else smphdr.OP.WRITE_RSP
        reply = _Reply(answer_op, version, group, sequence, command)
        if version > smphdr.Version.V2:
            return reply.error(MGMT_ERR.UNSUPPORTED_TOO_NEW, "SMP version 2 at most")
        entry = self._table.get((group, command, smphdr.OP(op)))
        if entry is None:
            return reply.error(MGMT_ERR.ENOTSUP, f"group {group} command {command} op {op} is not served")
        request_cls, response_cls, handler = entry
        try:
            body = cbor2.loads(message[smphdr.Header.SIZE:])
            length = int.from_bytes(raw[2:4], "big")
            if length != len(message) - smphdr.Header.SIZE or not isinstance(body, dict):
                raise ValueError(f"header length {length}, body {len(message) - smphdr.Header.SIZE} bytes")
            known = {k: v for k, v in body.items() if k in request_cls.model_fields}  # unknown keys: ignored
            request = request_cls(header=smphdr.Header.loads(raw), smp_data=message, **known)
        except (ValueError, TypeError, ValidationError, cbor2.CBORDecodeError, RecursionError, SMPException) as exc:
            self.notes.append(f"smp: group {group} command {command}: bad request: {exc}")
            return reply.error(MGMT_ERR.EINVAL, "malformed request")
        try:
            fields = handler(request)
        except SmpRefused as exc:
            self.notes.append(f"smp: group {group} command {command}: {exc.rc.name}: {exc}")
            return reply.error(exc.rc, str(exc))
        return response_cls(version=smphdr.Version(version), sequence=sequence, **fields).BYTES

    def _images(self) -> ImageGroup:
        if self.images is None:
            raise SmpRefused(MGMT_ERR.ENOTSUP, "this device has no image slots")
        return self.images

    def _reset(self, _request: smpos.ResetWriteRequest) -> dict[str, Any]:
        self._events.append(ResetRequested())
        return {}

    def _erase(self, request: smpimg.ImageEraseRequest) -> dict[str, Any]:
        self._images().erase(request.slot)
        return {}

    def _state_write(self, request: smpimg.ImageStatesWriteRequest) -> dict[str, Any]:
        images = self._images()
        images.state_write(request.hash, request.confirm)
        return {"images": images.states()}

    def _info(self, request: smpos.OSApplicationInfoReadRequest) -> dict[str, Any]:
        letters = request.format or "s"
        if set(letters) - set(_INFO_ORDER + "a"):
            raise SmpRefused(smpos.OS_MGMT_RET_RC.INVALID_FORMAT, f"format {letters!r}: letters of snrvbmpioa")
        running = self._images().states() if self.images is not None else []
        version = next((s["version"] for s in running if s.get("active")), "none")
        values = {"s": "pos-fw-agent", "n": self.device_class, "r": version, "v": version,
                  "b": "-", "m": platform.machine() or "unknown", "p": platform.machine() or "unknown",
                  "i": "pos-sim", "o": "POSFW1+SMP"}
        chosen = _INFO_ORDER if "a" in letters else [c for c in _INFO_ORDER if c in letters]
        return {"output": " ".join(values[c] for c in chosen)}

    def _bootloader(self, request: smpos.BootloaderInformationReadRequest) -> dict[str, Any]:
        if request.query is None:
            return {"bootloader": "MCUboot"}
        if request.query == "mode":
            return {"bootloader": "MCUboot", "response": {"mode": smpos.MCUbootMode.DIRECT_XIP_WITH_REVERT,
                                                          "no-downgrade": True}}
        raise SmpRefused(smpos.OS_MGMT_RET_RC.QUERY_YIELDS_NO_ANSWER, f"query {request.query!r} is not known")


class _Reply:
    """Builds error answers with the request's sequence, group and command."""

    def __init__(self, op: smphdr.OP, version: int, group: int, sequence: int, command: int) -> None:
        self.op, self.version, self.group, self.sequence, self.command = op, version, group, sequence, command

    def error(self, rc: Any, reason: str) -> bytes:
        if isinstance(rc, MGMT_ERR):
            body: dict[str, Any] = {"rc": int(rc), "rsn": reason[:120]}
        elif self.version >= smphdr.Version.V2:
            body = {"err": {"group": self.group, "rc": int(rc)}}
        else:  # SMP version 1 has no group codes: a general code and the reason
            body = {"rc": int(MGMT_ERR.EUNKNOWN if int(rc) == 1 else MGMT_ERR.EINVAL),
                    "rsn": f"{rc.name}: {reason}"[:120]}
        data = cbor2.dumps(body, canonical=True)
        head = (bytes([(self.op & 0b111) | (self.version << 3), 0]) + len(data).to_bytes(2, "big")
                + self.group.to_bytes(2, "big") + bytes([self.sequence, self.command]))
        return head + data
