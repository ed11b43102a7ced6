"""Key handling of user management and the own-password screen, plus the helpers every cashier/supervisor
screen shares (message lookup, audit, permission check). Mixed into ``TerminalApp`` through ``OfficeKeys``.

>>> UserKeys.__name__
'UserKeys'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows.messages import Msg, t
from terminal.audit import AuditLog
from terminal.config import Settings
from terminal.roles import Action, Role, allowed, roles_for
from terminal.screens import Key
from terminal.services import Services
from terminal.views import Session

__all__ = ["UserKeys"]

_ROLE_KEYS = {"1": Role.CASHIER, "2": Role.SUPERVISOR, "3": Role.TECHNICIAN}


class UserKeys:
    """Mixin: needs the app's session, services, settings, audit log, ``_fire`` and ``_refresh``."""

    session: Session
    services: Services
    settings: Settings
    audit: AuditLog
    _fire: Callable[[str], None]
    _refresh: Callable[[], None]

    # --- helpers --------------------------------------------------------------------------------------------

    def _say(self, key: str, **args: Any) -> str:
        return t(key, self.session.lang, **args)

    def _audit(self, action: str, detail: str = "", user_id: str | None = None) -> None:
        who = user_id or (self.session.user.user_id if self.session.user else "-")
        self.audit.record(who, action, detail)

    def _role(self) -> str:
        return self.session.user.role if self.session.user else ""

    def _uid(self) -> str:
        return self.session.user.user_id if self.session.user else ""

    def _go_home(self, _key: Key | None = None) -> None:
        self.session.error = None
        self._fire("home")

    def _permit(self, action: Action) -> bool:
        """True when the logged-in user may; otherwise says who may, audits the refusal, returns False."""
        if allowed(self._role(), action):
            return True
        who = "_".join(r.value for r in roles_for(action))
        self.session.error = self._say("home.refused", role=Msg(f"role.{self._role()}"), allowed=Msg(f"role.{who}"))
        self._audit("refused", action.value)
        self._refresh()
        return False

    # --- users ----------------------------------------------------------------------------------------------

    def _key_users(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if o.adding:
            self._adding_user(key)
        elif key is Key.CANCEL:
            self._go_home()
            return
        elif key is Key.F1:
            o.adding, o.add_id, o.add_role, o.user_entry, o.info = "id", "", "", "", None
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(o.users)):
            o.user_pick, o.user_entry, o.info, s.error = o.users[int(key.digit) - 1].user_id, "", None, None
            self._fire("open_user")
            return
        self._refresh()

    def _adding_user(self, key: Key) -> None:
        s, o = self.session, self.session.office
        if key is Key.CANCEL:
            o.adding, s.error = "", None
        elif o.adding == "id" and key.digit is not None and len(o.add_id) < 6:
            o.add_id += key.digit
        elif o.adding == "id" and key is Key.ENTER and o.add_id:
            o.adding = "role"
        elif o.adding == "role" and key.value in _ROLE_KEYS:
            o.add_role, o.adding = _ROLE_KEYS[key.value].value, "password"
        elif o.adding == "password" and key.digit is not None and len(o.user_entry) < 12:
            o.user_entry += key.digit
        elif key is Key.CLEAR:
            o.add_id, o.user_entry = (o.add_id[:-1], "") if o.adding == "id" else (o.add_id, o.user_entry[:-1])
        elif o.adding == "password" and key is Key.ENTER:
            done = self.services.users.add(o.add_id, o.add_role, o.user_entry)
            o.user_entry = ""
            if done.ok:
                self._audit("user_add", f"{o.add_id} {o.add_role}")
                o.adding, o.info, s.error = "", self._say(done.message, **done.args), None
                o.users = self.services.users.list_users()
            else:
                s.error = self._say(done.message, **done.args)

    def _key_user_edit(self, key: Key) -> None:
        s, o = self.session, self.session.office
        users = self.services.users
        done = None
        if key is Key.CANCEL:
            o.users, s.error, o.info = users.list_users(), None, None
            self._fire("back")
            return
        if key.digit is not None and len(o.user_entry) < 12:
            o.user_entry += key.digit
        elif key is Key.CLEAR:
            o.user_entry = o.user_entry[:-1]
        elif key is Key.ENTER and o.user_entry:
            done, action = users.reset_password(o.user_pick, o.user_entry), "password_reset"
            o.user_entry = ""
        elif key is Key.F2:
            done, action = users.unlock(o.user_pick), "unlock"
        elif key is Key.F3 and o.user_pick == self._uid():
            s.error = self._say("users.own_role")
        elif key is Key.F3:  # nobody changes their own role (a supervisor could lock everyone out)
            current = users.get(o.user_pick)
            roles = list(Role)
            role = roles[(roles.index(Role(current.role)) + 1) % len(roles)] if current else Role.CASHIER
            done, action = users.set_role(o.user_pick, role.value), "role_change"
        if done is not None:
            if done.ok:
                self._audit(action, f"{o.user_pick} {done.args.get('role', '')}".strip())
                o.info, s.error = self._say(done.message, **{k: Msg(f"role.{v}") if k == "role" else v
                                                             for k, v in done.args.items()}), None
                o.users = users.list_users()
            else:
                s.error = self._say(done.message, **done.args)
        self._refresh()

    # --- own password ---------------------------------------------------------------------------------------

    def _key_password(self, key: Key) -> None:
        s, o = self.session, self.session.office
        value = o.password_values[o.password_field]
        if key is Key.CANCEL:
            self._go_home()
            return
        if key.digit is not None and len(value) < 12:
            o.password_values[o.password_field] = value + key.digit
        elif key is Key.CLEAR:
            o.password_values[o.password_field] = value[:-1]
        elif key is Key.ENTER and o.password_field < 2:
            o.password_field += 1
        elif key is Key.ENTER:
            old, new, again = o.password_values
            o.password_field, o.password_values = 0, ["", "", ""]
            if new != again:
                s.error = self._say("password.mismatch")
            else:
                done = self.services.users.change_own_password(self._uid(), old, new)
                if done.ok:
                    self._audit("password_change")
                    s.error, s.notice = None, (self._say("password.changed"),)
                    self._fire("home")
                    return
                s.error = self._say(done.message, **done.args)
        self._refresh()
