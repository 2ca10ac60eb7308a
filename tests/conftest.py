from __future__ import annotations

import pytest

from lambdalake.config import Config, load_config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration need the engines; `lifecycle` tests stop them, so run last."""
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("lifecycle") is not None)


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config()
