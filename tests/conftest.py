"""Suite-wide options: ``--port`` points the hardware tests at a real device (they are skipped without it)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--port", action="store", default=None,
                     help="serial port (or pyserial URL) of a real card reader for tests marked 'hardware'")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(reason="needs a real device: pytest --port /dev/ttyUSB0 -m hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def hardware_port(request: pytest.FixtureRequest) -> str:
    port: str = request.config.getoption("--port")
    return port
