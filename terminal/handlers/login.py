"""The login screen: user id, then password; a wrong password counts towards the lock-out.

>>> Login().__class__.__name__
'Login'
"""

from __future__ import annotations

import logging

from terminal.core import TerminalCore
from terminal.screens import Key
from terminal.users import MIN_PASSWORD

__all__ = ["Login"]

log = logging.getLogger("terminal.login")


class Login:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s = core.session
        typing_id = s.login_field == "id"
        value = s.login_id if typing_id else s.login_pw
        if key.digit is not None and len(value) < 12:
            value += key.digit
        elif key is Key.CLEAR:
            value = value[:-1]
        elif key is Key.CANCEL:
            s.login_id, s.login_pw, s.login_field, s.error = "", "", "id", None
            core.refresh()
            return
        elif key is Key.ENTER and typing_id and s.login_id:
            s.login_field = "pw"
        elif key is Key.ENTER and not typing_id and s.login_pw:  # an empty password is no attempt
            self._log_in(core)
            return
        if typing_id:
            s.login_id = value
        else:
            s.login_pw = value
        core.refresh()

    def _log_in(self, core: TerminalCore) -> None:
        s = core.session
        result = core.services.users.login(s.login_id, s.login_pw)
        s.login_pw, s.login_field = "", "pw" if result.user is None else "id"
        if result.user is None:
            s.error = core.say(result.message, **result.args)
            # the stored id of an existing account, never what was typed (it may be a password in the wrong field)
            core.audit(result.audit_action, result.detail, result.known_id or "?")
            core.refresh()
            return
        s.user, s.login_id, s.error, s.notice = result.user, "", None, ()
        if result.weak_password:  # an account from before 6-digit passwords: told to change it (home key 8)
            s.notice = (core.say("login.change_password", min=MIN_PASSWORD),)
        log.info("login %s", result.user.user_id)
        core.audit("login", result.user.role + (" (password too short: told to change)"
                                                if result.weak_password else ""))
        core.fire("logged_in")
