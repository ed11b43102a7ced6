"""User management (list, add, reset password, unlock, change role) and the own-password screen.

>>> Users().__class__.__name__
'Users'
"""

from __future__ import annotations

from flows.messages import Msg
from terminal.core import TerminalCore
from terminal.roles import Role
from terminal.screens import Key

__all__ = ["Users", "UserEdit", "Password", "open_users", "open_password"]

_ROLE_KEYS = {"1": Role.CASHIER, "2": Role.SUPERVISOR, "3": Role.TECHNICIAN}


def open_users(core: TerminalCore) -> None:
    o = core.session.office
    o.users, o.adding, o.user_entry = core.services.users.list_users(), "", ""
    core.fire("open_users")


def open_password(core: TerminalCore) -> None:
    o = core.session.office
    o.password_field, o.password_values = 0, ["", "", ""]
    core.fire("open_password")


class Users:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        if o.adding:
            self._adding(core, key)
        elif key is Key.CANCEL:
            core.go_home()
            return
        elif key is Key.F1:
            o.adding, o.add_id, o.add_role, o.user_entry, o.info = "id", "", "", "", None
        elif key.digit is not None and 1 <= int(key.digit) <= min(9, len(o.users)):
            o.user_pick, o.user_entry, o.info, s.error = o.users[int(key.digit) - 1].user_id, "", None, None
            core.fire("open_user")
            return
        core.refresh()

    @staticmethod
    def _adding(core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
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
            done = core.services.users.add(o.add_id, o.add_role, o.user_entry)
            o.user_entry = ""
            if done.ok:
                core.audit("user_add", f"{o.add_id} {o.add_role}")
                o.adding, o.info, s.error = "", core.say(done.message, **done.args), None
                o.users = core.services.users.list_users()
            else:
                s.error = core.say(done.message, **done.args)


class UserEdit:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        users = core.services.users
        done, action = None, ""
        if key is Key.CANCEL:
            o.users, s.error, o.info = users.list_users(), None, None
            core.fire("back")
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
        elif key is Key.F3 and o.user_pick == core.uid():
            s.error = core.say("users.own_role")
        elif key is Key.F3:  # nobody changes their own role (a supervisor could lock everyone out)
            current = users.get(o.user_pick)
            roles = list(Role)
            role = roles[(roles.index(Role(current.role)) + 1) % len(roles)] if current else Role.CASHIER
            done, action = users.set_role(o.user_pick, role.value), "role_change"
        if done is not None:
            if done.ok:
                core.audit(action, f"{o.user_pick} {done.args.get('role', '')}".strip())
                o.info, s.error = core.say(done.message, **{k: Msg(f"role.{v}") if k == "role" else v
                                                            for k, v in done.args.items()}), None
                o.users = users.list_users()
            else:
                s.error = core.say(done.message, **done.args)
        core.refresh()


class Password:
    def on_key(self, core: TerminalCore, key: Key) -> None:
        s, o = core.session, core.session.office
        value = o.password_values[o.password_field]
        if key is Key.CANCEL:
            core.go_home()
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
                s.error = core.say("password.mismatch")
            else:
                done = core.services.users.change_own_password(core.uid(), old, new)
                if done.ok:
                    core.audit("password_change")
                    s.error, s.notice = None, (core.say("password.changed"),)
                    core.fire("home")
                    return
                s.error = core.say(done.message, **done.args)
        core.refresh()
