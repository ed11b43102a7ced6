"""``SimWorld.config()`` twice gives the same configuration and starts nothing again; ``stop()`` then releases
every port and pseudo-terminal (through real sockets and ptys); a simulated HTTP back end whose port is taken
fails with the socket's own error, not an AttributeError of half-made server bookkeeping."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

import pytest

from sim.backends.carrier import CarrierSim
from sim.runner.world import SimWorld


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_config_twice_is_the_same_config_and_stop_releases_everything(tmp_path):
    world = SimWorld(workdir=tmp_path)
    try:
        first = world.config()
        threads_before = {t for t in threading.enumerate() if t.name.startswith("sim")}
        assert threads_before  # the back ends serve on their threads
        second = world.config()
        assert second == first
        assert second is not first and second["devices"] is not first["devices"]  # a copy: editing it changes nothing
        second["devices"]["reader"] = "/dev/null"
        assert world.config() == first
        assert {t for t in threading.enumerate() if t.name.startswith("sim")} == threads_before
        ports = [urlsplit(first[name]["url"]).port for name in ("carrier", "wallet", "wechatpay", "alipay")]
        ports.append(first["host"]["port"])
        assert not any(_refused(port) for port in ports)  # all of them serving
        ptys = [first["devices"][name] for name in ("reader", "pinpad", "printer", "scanner")]
        assert all(os.path.exists(path) for path in ptys)
    finally:
        world.stop()
    assert all(_refused(port) for port in ports)
    for path in ptys:  # the pty is gone with its master (or the slave name is no longer a terminal)
        if os.path.exists(path):
            with pytest.raises(OSError):
                os.close(os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
    world.stop()  # a second stop is harmless


def test_a_back_end_on_a_taken_port_fails_with_the_bind_error():
    taken = CarrierSim()
    url = taken.start()
    try:
        assert taken.start() == url  # started already: the same URL, nothing bound again
        other = CarrierSim(port=urlsplit(url).port)
        with pytest.raises(OSError) as refused:
            other.start()
        assert refused.type is not AttributeError and refused.value.errno == 98  # EADDRINUSE
    finally:
        taken.stop()


def test_a_second_start_is_refused_and_changes_nothing(tmp_path):
    world = SimWorld(workdir=tmp_path).start()
    try:
        world.wait_for("login")
        terminal, services = world.terminal, world.services
        with pytest.raises(RuntimeError, match="running already"):
            world.start()
        assert world.terminal is terminal and world.services is services
        world.wait_for("login")  # the one terminal goes on
    finally:
        world.stop()
