"""Suite-wide options: ``--port`` points the hardware tests at a real device (they are skipped without it).

Hypothesis runs without its per-example deadline: on a shared 2-core runner with 4 test workers an example's
wall time says nothing about the code, and a timing failure there is noise. Speed is measured by ``make bench``.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


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
