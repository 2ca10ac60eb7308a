from __future__ import annotations

import pytest

from lambdalake.config import Config, load_config


#: `make test` runs the tests that are not `serial` in two processes at once (pytest-xdist's
#: loadgroup), one per lane, then the `serial` ones alone. Lane "a" holds the modules that write
#: files under views/ or trigger DAGs (their tests must not overlap one another); lane "b" all the
#: others, and the tests of lane a's modules marked `lane_b`, which do neither (the lanes take
#: about as long). Each lane runs at most two Flink slots' worth of jobs at a time, of the
#: TaskManager's 4.
LANE_A = {"test_batch", "test_import", "test_kappa", "test_ui"}


def lane(item: pytest.Item) -> str:
    in_a = "tests/integration/" in str(item.path) and item.path.stem in LANE_A
    return "a" if in_a and item.get_closest_marker("lane_b") is None else "b"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration need the engines; `lifecycle` tests stop them, so run last."""
    for item in items:
        integration = "tests/integration/" in str(item.path)
        if integration:
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("serial") is None:
            item.add_marker(pytest.mark.xdist_group(lane(item)))
    items.sort(key=lambda item: item.get_closest_marker("lifecycle") is not None)


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config()
