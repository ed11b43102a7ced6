"""Power cuts at every flash erase and write of an update (download, finalize, test boot, confirm, revert), torn
writes and erases included, and random multi-cut sequences: the device always boots a whole signed image and a
repeated update completes. ``make test`` runs a small image; ``make soak`` a larger one and many more sequences."""

from __future__ import annotations

import shutil

import pytest

from firmware_image.flash import SimFlash
from sim.crash.flash_powerfail import CampaignResult, make_campaign


def _report(capsys, name: str, result: CampaignResult) -> None:
    with capsys.disabled():
        print(f"\n[power-fail] {name}: cut points survived {result.survived} / {result.total} "
              f"({result.operations} flash operations per clean run)")
    assert result.survived == result.total, "\n".join(result.failures[:20])
    assert result.total > 0


@pytest.mark.parametrize("passes, counter_full, shifted", [(True, False, False), (False, False, False),
                                                           (True, True, False), (True, False, True)],
                         ids=["confirmed", "self-test-fails-reverted", "counter-sector-rolls-over", "delta-shifted"])
def test_every_cut_point_of_an_update(tmp_path, capsys, passes, counter_full, shifted):
    campaign = make_campaign(tmp_path, payload_size=5000, sector_size=1024, new_passes_self_test=passes,
                             counter_nearly_full=counter_full, shifted=shifted)
    if shifted:  # without a cut the download is mostly DELTA writes: the cuts below land inside them
        shutil.copyfile(campaign.base, tmp_path / "clean.bin")
        shutil.copyfile(f"{campaign.base}.chip.json", f"{tmp_path / 'clean.bin'}.chip.json")
        reports: list = []
        with SimFlash(tmp_path / "clean.bin") as flash:
            campaign.sequence(flash, reports, [])
        assert reports[0].delta >= 3 and reports[0].bytes_ratio < 0.3, reports[0]
    result = CampaignResult()
    campaign.single_cuts(tmp_path / "work.bin", result, "single")
    campaign.multi_cuts(tmp_path / "work.bin", result, "random", runs=8, seed=11)
    _report(capsys, f"update ({'confirmed' if passes else 'reverted'}{', counter rollover' if counter_full else ''})",
            result)
    assert result.operations >= 15  # download, finalize and boot steps were all in the sequence


@pytest.mark.soak
@pytest.mark.parametrize("passes", [True, False], ids=["confirmed", "reverted"])
def test_soak_every_cut_point_larger_image_and_many_random_sequences(tmp_path, capsys, passes):
    result = CampaignResult()
    for seed, counter_full in ((1, False), (2, True)):
        campaign = make_campaign(tmp_path, payload_size=48_000, sector_size=4096, new_passes_self_test=passes,
                                 counter_nearly_full=counter_full, seed=seed)
        campaign.single_cuts(tmp_path / "work.bin", result, f"seed {seed}", fractions=(0.0, 0.125, 0.5, 0.875))
        campaign.multi_cuts(tmp_path / "work.bin", result, f"seed {seed}", runs=150, seed=seed)
    _report(capsys, f"soak ({'confirmed' if passes else 'reverted'})", result)
