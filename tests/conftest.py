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


def _start_first(item: pytest.Item) -> int:
    """0 for the tests that take many seconds (``slow``), 1 for the end-to-end ones (``scenario``), 2 for the rest."""
    return 0 if "slow" in item.keywords else 1 if "scenario" in item.keywords else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Longest first (a stable sort: the order within each group stays the collection order). With
    # ``make test``'s ``--dist load --maxschedchunk 1`` each worker takes the next test when it is free, so the
    # long tests spread over the workers at the start and the short ones fill the gaps at the end, instead of one
    # worker starting a 30-second test while the others have already finished.
    items.sort(key=_start_first)
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
