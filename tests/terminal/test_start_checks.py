"""``pos-terminal`` at start and ``pos-terminal --check-config`` run one list of checks (``START_CHECKS``): a check
added to it refuses both, with the same message, before anything is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from pos_errors import ConfigError
from terminal import wiring
from terminal.config import Settings


def test_a_check_added_to_the_list_refuses_start_and_check_config_alike(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(settings: Settings) -> None:
        raise ConfigError(f"terminal.id {settings.terminal.id} is not welcome here")

    monkeypatch.setattr(wiring, "START_CHECKS", (("extra", refuse), *wiring.START_CHECKS))
    settings = Settings.from_dict({"terminal": {"id": "T0000042", "journal": str(tmp_path / "j.db")}})
    problems = wiring.check_start(settings)
    assert problems[0] == ("extra", "terminal.id T0000042 is not welcome here")
    assert len(problems) > 1  # every check ran, not only up to the first refusal
    with pytest.raises(ConfigError, match="terminal.id T0000042 is not welcome here"):
        wiring.build_services(settings)
    assert not (tmp_path / "j.db").exists()  # refused before the journal was opened


def test_the_acquirer_clients_own_checks_are_start_checks_too(tmp_path: Path) -> None:
    """A time-out of 0 or a keep-alive of a day passes the file's own checks; the acquirer client refuses them,
    at start and in --check-config alike."""
    settings = Settings.from_dict({"terminal": {"id": "T0000042", "journal": str(tmp_path / "j.db"),
                                                "profile": "test"},
                                   "host": {"timeout_s": 0.0, "insecure_plaintext": True, "key_scheme": "none"}})
    assert ("acquirer link", "host.timeout_s and host.connect_timeout_s must be positive") in \
        wiring.check_start(settings)
    with pytest.raises(ConfigError):
        wiring.build_services(settings)  # refused (the device secret is missing too: the first refusal says so)
    assert not (tmp_path / "j.db").exists()
