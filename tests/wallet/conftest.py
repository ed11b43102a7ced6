from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.wechatpay import WeChatPayClient
from sim.backends.wallet import WalletSim
from tests.wallet.replaying import Replaying, client_of


@pytest.fixture
def wechat() -> Iterator[tuple[Replaying, WalletSim, WeChatPayClient]]:
    """The replaying WeChat Pay platform, its engine and a client (a module's own ``wechat`` fixture wins)."""
    engine = WalletSim(user_paying_s=0.2)
    sim = Replaying(engine)
    with client_of(sim) as client:
        yield sim, engine, client
