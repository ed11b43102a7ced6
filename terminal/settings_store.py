"""Settings a supervisor may change on the terminal, kept in the journal database and laid over the TOML
configuration at start-up (the file stays the technician's; the terminal's own changes win, and each is audited).

>>> from terminal.journal import Journal
>>> store = SettingsStore(Journal(":memory:"))
>>> store.set("timeouts.idle_s", 120)
>>> store.apply(Settings()).timeouts.idle_s
120.0
"""

from __future__ import annotations

import dataclasses

from terminal.config import Settings
from terminal.journal import Journal

__all__ = ["SettingsStore", "EDITABLE"]

# key -> (catalogue key of its label, lowest, highest); values are whole numbers typed on the keypad
EDITABLE: dict[str, tuple[str, int, int]] = {
    "timeouts.idle_s": ("settings.idle_s", 30, 900),  # capped at 15 minutes (issue 19)
    "security.lock_s": ("settings.lock_s", 900, 86400),  # at least 15 minutes (issue 19)
    "security.max_failed": ("settings.max_failed", 3, 10),
    "security.key_load_dual": ("settings.key_load_dual", 0, 1),
}


class SettingsStore:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def overrides(self) -> dict[str, int]:
        return {key: value for key, value in self.journal.settings().items() if key in EDITABLE}

    def set(self, key: str, value: int) -> None:
        """Store one value. Raises ValueError for a key not in ``EDITABLE`` or a value out of its range."""
        if key not in EDITABLE:
            raise ValueError(f"{key} cannot be changed on the terminal")
        _label, low, high = EDITABLE[key]
        if not low <= value <= high:
            raise ValueError(f"{key} must be {low}..{high}, not {value}")
        self.journal.setting_put(key, value)

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with the stored values laid over it."""
        for key, value in self.overrides().items():
            section_name, name = key.split(".")
            section = getattr(settings, section_name)
            kind = type(getattr(section, name))
            settings = dataclasses.replace(settings, **{section_name: dataclasses.replace(section,
                                                                                           **{name: kind(value)})})
        return settings

    @staticmethod
    def current(settings: Settings, key: str) -> int:
        section_name, name = key.split(".")
        return int(getattr(getattr(settings, section_name), name))
