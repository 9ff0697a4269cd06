from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.receiver import Receiver

SECRET = "whsec_test_0123456789abcdef"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET).start()
    try:
        yield r
    finally:
        r.stop()


# The API tests here use the API suite's fixtures (dev chain settings, CoinGecko stand-in).
from tests.api.conftest import coingecko, coingecko_server  # noqa: E402,F401
from tests.worker.conftest import redis_prefix  # noqa: E402,F401
