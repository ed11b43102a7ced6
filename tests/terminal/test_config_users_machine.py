import datetime as dt

import pytest

from pos_errors import ConfigError
from terminal.config import Settings, load_settings
from terminal.journal import Journal
from terminal.machine import CANCEL_OUTCOME, TRANSITIONS, State, mermaid
from terminal.users import UserStore, hash_password


@pytest.mark.parametrize("data, message", [
    ({"bogus": {}}, "unknown section"),
    ({"host": {"prot": 1}}, "unknown key host.prot"),
    ({"host": {"port": "8583"}}, "host.port must be int"),
    ({"fees": {"card": [1]}}, "fees.card must be"),
    ({"users": [{"id": "01"}]}, "password_hash"),
])
def test_bad_config_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_dict(data)


def test_example_config_is_complete_and_valid():
    s = load_settings("config/terminal.example.toml")
    assert s.host.port == 8583 and s.fees.fee("card", 1000) == 0 and len(s.emv.aids) == 4
    assert s.users[0].role == "cashier"


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[terminal\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings(bad)


def test_login_lockout_after_five_wrong_passwords(tmp_path):
    users = UserStore(Journal(tmp_path / "j.db"), lock_s=15 * 60)
    users.ensure("01", "Li", "cashier", hash_password("1111", n=2**10))
    now = dt.datetime(2026, 11, 25, 9, 0)
    assert users.login("01", "1111", now).user is not None
    for _ in range(4):  # the same answer as an unknown id: no count that would tell the account exists
        result = users.login("01", "0000", now)
        assert (result.message, result.args, result.locked_now) == ("login.wrong", {}, False)
    locking = users.login("01", "0000", now)
    assert (locking.message, locking.args, locking.locked_now) == ("login.wrong", {}, True)  # the same answer
    assert (users.login("01", "1111", now).message, users.login("01", "1111", now).detail) == (
        "login.wrong", "account locked until 09:15:00 (right password)")
    assert users.login("01", "1111", now).user is None  # locked even with the right password
    assert users.login("01", "1111", now + dt.timedelta(minutes=16)).user is not None
    assert users.login("02", "1111", now).user is None


def test_passwords_are_stored_hashed(tmp_path):
    j = Journal(tmp_path / "j.db")
    UserStore(j).ensure("01", "Li", "cashier", hash_password("1111", n=2**10))
    stored = j._db.execute("SELECT pw_hash FROM users").fetchone()[0]
    assert stored.startswith("scrypt$") and "1111" not in stored


def test_cancel_is_defined_on_every_screen_and_every_state_is_reachable():
    assert set(CANCEL_OUTCOME) == set(State)
    reachable = {State.BOOT}
    for _ in State:
        for _trigger, sources, dest in TRANSITIONS:
            srcs = sources if isinstance(sources, list) else [sources]
            if reachable & set(srcs):
                reachable.add(dest)
    assert reachable == set(State)
    assert "login --> home: logged_in" in mermaid()


def test_readme_state_diagram_is_current():
    from pathlib import Path

    from terminal.diagram import update_readme

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text(encoding="utf-8")
    assert update_readme(readme) == readme, "run `make docs`: the README's state diagram is stale"
