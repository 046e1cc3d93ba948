"""Run the store conformance suite against every adapter in ``tests/stores.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_conformance import StoreConformance
from stores import STORE_FACTORIES

from lifecycle.stores.base import Store


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = STORE_FACTORIES[request.param](tmp_path)
    yield opened
    opened.close()


class TestStoreConformance(StoreConformance):
    pass
