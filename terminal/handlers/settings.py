"""The settings screen (supervisor): the few values a terminal may change, stored over the configuration file.

>>> SettingsScreen().__class__.__name__
'SettingsScreen'
"""

from __future__ import annotations

from flows.messages import Msg
from terminal.config import Settings
from terminal.core import TerminalCore
from terminal.screens import Key
from terminal.settings_store import EDITABLE, SettingsStore

__all__ = ["SettingsScreen", "open_settings", "apply_stored", "use_settings"]


def use_settings(core: TerminalCore, settings: Settings) -> None:
    """Use ``settings`` from now on (the stored overrides laid over the configuration)."""
    sv = core.services
    sv.settings = settings
    sv.users.lock_s = settings.security.lock_s
    sv.users.max_failed = settings.security.max_failed


def apply_stored(core: TerminalCore) -> None:
    store = core.services.settings_store
    if store is not None:
        use_settings(core, store.apply(core.services.settings))


def open_settings(core: TerminalCore) -> None:
    o = core.session.office
    o.setting_pick, o.setting_entry, o.info = 0, "", None
    o.setting_values = {name: SettingsStore.current(core.settings, name) for name in EDITABLE}
    core.fire("open_settings")


class SettingsScreen:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        names = list(EDITABLE)
        if key is Key.CANCEL and o.setting_entry:
            o.setting_entry = ""
        elif key is Key.CANCEL:
            core.go_home()
            return
        elif key is Key.F1:
            o.setting_pick, o.setting_entry, o.info, s.error = (o.setting_pick + 1) % len(names), "", None, None
        elif key.digit is not None and len(o.setting_entry) < 6:
            o.setting_entry += key.digit
        elif key is Key.CLEAR:
            o.setting_entry = o.setting_entry[:-1]
        elif key is Key.ENTER and o.setting_entry:
            self._save(core, names[o.setting_pick], int(o.setting_entry))
            o.setting_entry = ""
        core.refresh()

    @staticmethod
    def _save(core: TerminalCore, name: str, value: int) -> None:
        s, o = core.session, core.session.office
        label, low, high = EDITABLE[name]
        old = SettingsStore.current(core.settings, name)
        store = core.services.settings_store
        if store is None:
            return
        try:
            store.set(name, value)
        except ValueError:
            s.error = core.say("settings.range", name=Msg(label), low=low, high=high)
            return
        use_settings(core, store.apply(core.settings))
        core.audit("settings", f"{name} {old} -> {value}")
        o.setting_values[name] = value
        o.info, s.error = core.say("settings.saved", name=Msg(label), value=value), None
