"""A small synchronous SMP client over a ``Link``: what ``pos-fw test|confirm|revert --port`` send to the agent.

POSFW1 is the fast transfer path; the slot commands that already exist in mcumgr (image state read and write)
go over SMP, so ``pos-fw`` and ``smpmgr`` change the slots through the same code on the device. Messages are the
``smp`` package's; framing is ``firmware_image.smp_serial``. A device's refusal becomes ``DeviceRefused`` with
SMP's code name (``IMAGE_SETTING_TEST_TO_ACTIVE_DENIED`` …).

>>> SmpClient.__name__
'SmpClient'
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import cbor2
from pydantic import ValidationError
from smp import header as smphdr
from smp import image_management as smpimg
from smp.error import MGMT_ERR
from smp.message import Request, Response
from smp.os_management import OS_MGMT_RET_RC

from firmware_image.errors import DeviceRefused, FlashProtocolError
from firmware_image.link import Link
from firmware_image.smp_serial import CONTINUE, START, SmpLineDecoder, encode_frame

__all__ = ["SmpClient"]

R = TypeVar("R", bound=Response)
_GROUP_CODES: dict[int, Any] = {smphdr.GroupId.IMAGE_MANAGEMENT: smpimg.IMG_MGMT_ERR,
                                smphdr.GroupId.OS_MANAGEMENT: OS_MGMT_RET_RC}


def _code_name(codes: Any, rc: int) -> str:
    try:
        return str(codes(rc).name)
    except ValueError:
        return str(rc)


class SmpClient:
    """One request at a time; answers are matched by sequence number, stale ones skipped."""

    def __init__(self, link: Link, *, timeout: float = 3.0) -> None:
        self.link = link
        self.timeout = timeout
        self._sequence = 0
        self._decoder = SmpLineDecoder(buf_size=1 << 16)
        self._pending = b""

    def request(self, make: type[Request], answer: type[R], **fields: Any) -> R:
        self._sequence = (self._sequence + 1) % 256
        message = make(sequence=self._sequence, **fields)
        for line in encode_frame(message.BYTES):
            self.link.write(line)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            frame = self._next_frame(deadline - time.monotonic())
            if frame is None or len(frame) < smphdr.Header.SIZE or frame[6] != self._sequence:
                continue
            return self._decode(frame, answer)
        raise FlashProtocolError("no SMP answer from the device: is the update agent running on that port?")

    def _next_frame(self, wait: float) -> bytes | None:
        frame = self._decoder.next_frame()
        if frame is not None:
            return frame
        data = self.link.read(max(0.01, min(wait, 0.2)))
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            start = min((i for i in (line.find(START), line.find(CONTINUE)) if i >= 0), default=-1)
            if start >= 0:
                self._decoder.feed_line(line[start:] + b"\n")
        return self._decoder.next_frame()

    @staticmethod
    def _decode(frame: bytes, answer: type[R]) -> R:
        try:
            body = cbor2.loads(frame[smphdr.Header.SIZE:])
        except (cbor2.CBORDecodeError, ValueError) as exc:
            raise FlashProtocolError(f"device sent an SMP answer that is not CBOR: {exc}") from exc
        if isinstance(body, dict) and isinstance(body.get("err"), dict):
            err = body["err"]
            codes = _GROUP_CODES.get(err.get("group"), MGMT_ERR)
            raise DeviceRefused(f"device refused ({_code_name(codes, err.get('rc', -1))})")
        if isinstance(body, dict) and body.get("rc"):
            reason = f": {body['rsn']}" if body.get("rsn") else ""
            raise DeviceRefused(f"device refused ({_code_name(MGMT_ERR, body['rc'])}){reason}")
        try:
            return answer.loads(frame)
        except (ValidationError, ValueError) as exc:
            raise FlashProtocolError(f"device sent an SMP answer we cannot read: {exc}") from exc

    def states(self) -> list[smpimg.ImageState]:
        return self.request(smpimg.ImageStatesReadRequest, smpimg.ImageStatesReadResponse).images

    def state_write(self, digest: bytes | None, confirm: bool) -> list[smpimg.ImageState]:
        fields: dict[str, Any] = {"confirm": confirm}
        if digest is not None:
            fields["hash"] = digest
        return self.request(smpimg.ImageStatesWriteRequest, smpimg.ImageStatesWriteResponse, **fields).images
