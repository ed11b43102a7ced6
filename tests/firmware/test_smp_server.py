"""The SMP server core alone (no framing): SMP versions 1 and 2, malformed requests, unknown groups, fields a
newer client may add, and what a forged or replayed answer sent *to* the device does (nothing)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smp import header as smphdr
from smp.error import MGMT_ERR
from smp.image_management import (
    IMG_MGMT_ERR,
    ImageManagementErrorV1,
    ImageManagementErrorV2,
    ImageStatesReadResponse,
)
from smp.os_management import EchoWriteRequest, EchoWriteResponse, OSApplicationInfoReadRequest

from firmware_image.image import Version, make_image
from firmware_image.slots import set_pending
from firmware_image.smp_image import ImageGroup
from firmware_image.smp_server import SmpServer
from tests.firmware.conftest import DEVICE, new_flash


def _message(op: int, version: int, group: int, command: int, body: object, *, sequence: int = 5,
             length: int | None = None) -> bytes:
    data = cbor2.dumps(body)
    return (bytes([op | version << 3, 0]) + (len(data) if length is None else length).to_bytes(2, "big")
            + group.to_bytes(2, "big") + bytes([sequence, command]) + data)


@pytest.fixture
def server(tmp_path, key):
    flash = new_flash(tmp_path / "flash.bin")
    v1 = make_image(b"app" * 100, version=Version(1, 2, 3, 4), key=key, security_counter=1, device_class=DEVICE)
    flash.write(0, v1 + b"\xff" * (-len(v1) % 8))
    set_pending(flash, 0, permanent=True)
    yield SmpServer(ImageGroup(flash, [key], DEVICE, 0), DEVICE)
    flash.close()


def test_version_1_and_version_2_requests_get_answers_of_their_own_version(server):
    for version in (smphdr.Version.V1, smphdr.Version.V2):
        answer = EchoWriteResponse.loads(server.handle(EchoWriteRequest(d="x", version=version, sequence=9).BYTES))
        assert (answer.header.version, answer.header.sequence, answer.r) == (version, 9, "x")


def test_state_read_names_the_build_number_as_zephyr_does(server):
    answer = ImageStatesReadResponse.loads(server.handle(_message(0, 1, 1, 0, {})))
    assert [(i.slot, i.version, i.active, i.confirmed) for i in answer.images] == [(0, "1.2.3.4", True, True)]


@pytest.mark.parametrize(("message", "rc"), [
    (_message(2, 2, 0, 0, {"d": "x"}), MGMT_ERR.UNSUPPORTED_TOO_NEW),
    (_message(2, 1, 9, 0, {}), MGMT_ERR.ENOTSUP),  # shell group: not served
    (_message(0, 1, 0, 0, {}), MGMT_ERR.ENOTSUP),  # echo is a write, not a read
    (_message(2, 1, 0, 0, {"d": "x"}, length=99), MGMT_ERR.EINVAL),  # header length lies
    (_message(2, 1, 0, 0, {"d": 7}), MGMT_ERR.EINVAL),  # wrong type
    (_message(2, 1, 0, 0, [1, 2]), MGMT_ERR.EINVAL),  # not a map
    (_message(2, 1, 1, 1, {"off": 5, "data": b"x"}), MGMT_ERR.EINVAL),  # upload chunk without a session
    (bytes([2 | 1 << 3, 0, 0, 3, 0, 0, 1, 0]) + b"\xff\xff\xff", MGMT_ERR.EINVAL),  # not CBOR
])
def test_bad_requests_get_general_error_codes(server, message, rc):
    answer = server.handle(message)
    assert answer is not None and answer[6] == message[6] and answer[0] & 0b111 == (message[0] & 0b111) + 1
    assert cbor2.loads(answer[8:])["rc"] == rc


def test_fields_a_newer_client_adds_are_ignored(server):
    answer = server.handle(_message(2, 1, 0, 0, {"d": "hi", "future": True}))
    assert EchoWriteResponse.loads(answer).r == "hi"


def test_group_errors_are_version_2_err_maps_and_version_1_rc_with_a_reason(server):
    digest = b"\x01" * 32
    v2 = ImageManagementErrorV2.loads(server.handle(_message(2, 1, 1, 0, {"hash": digest})))
    assert (v2.err.group, v2.err.rc) == (1, IMG_MGMT_ERR.HASH_NOT_FOUND)
    v1 = ImageManagementErrorV1.loads(server.handle(_message(2, 0, 1, 0, {"hash": digest})))
    assert v1.rc == MGMT_ERR.EINVAL and v1.rsn.startswith("HASH_NOT_FOUND")


def test_answers_sent_to_the_device_are_not_answered(server):
    forged = _message(3, 1, 1, 0, {"images": []})  # a write *response*: the device asked nothing
    assert server.handle(forged) is None
    assert server.handle(b"\x00\x01") is None  # shorter than a header


def test_application_info_letters(server):
    info = server.handle(OSApplicationInfoReadRequest(format="snr", sequence=1).BYTES)
    assert cbor2.loads(info[8:])["output"] == f"pos-fw-agent {DEVICE} 1.2.3.4"
    bad = server.handle(OSApplicationInfoReadRequest(format="z", sequence=2).BYTES)
    assert cbor2.loads(bad[8:]) == {"err": {"group": 0, "rc": 2}}  # OS_MGMT_RET_RC.INVALID_FORMAT


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.binary(max_size=80),
                    st.text(max_size=20), st.lists(st.integers(), max_size=3),
                    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
_KEYS = st.sampled_from(["d", "off", "data", "len", "sha", "image", "upgrade", "hash", "confirm", "slot", "force",
                         "boot_mode", "format", "query", "x"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.integers(0, 7), version=st.integers(0, 3), group=st.sampled_from([0, 1, 2, 8, 9, 63, 64]),
       command=st.integers(0, 9), body=st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_message_gets_an_answer_or_none_never_an_exception(server, op, version, group, command, body):
    answer = server.handle(_message(op, version, group, command, body))
    assert answer is None or (len(answer) >= 8 and answer[6] == 5)
