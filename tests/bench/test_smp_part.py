"""``make bench``'s SMP block (``sim/bench/smp.py``) runs whole and keeps its keys (issue 17 item 6: history stays
comparable); the figures are measured there, never asserted here. One baud rate, the typical-size image: smpclient
and ``pos-fw flash`` each upload a real signed image to the paced agent, which verifies it before it answers."""

from __future__ import annotations

import pytest

from sim.bench import smp


@pytest.mark.slow
def test_the_smp_block_uploads_with_both_tools_and_keeps_its_keys() -> None:
    report = smp.measure(bauds=(921600,))
    assert set(report) == {"application_image_bytes", "uploaded_image_bytes", "uploaded_image", "upload_921600"}
    row = report["upload_921600"]
    assert set(row) == {"smpclient_s", "pos_fw_flash_s", "smpclient_over_pos_fw", "wire_time_of_image_s"}
    # the typical MCU-sized image, not the whole application, and both uploads took at least its wire time
    assert report["uploaded_image"] == "firmware_image+pos_errors"
    assert 200_000 < report["uploaded_image_bytes"] < 512 * 1024 < report["application_image_bytes"]
    assert row["wire_time_of_image_s"] == round(report["uploaded_image_bytes"] * 10 / 921600, 2)
    assert row["smpclient_s"] >= row["wire_time_of_image_s"]  # base64: SMP sends 4/3 of the image, paced
