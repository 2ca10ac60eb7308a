"""The cluster profile's tests run only on it: `lambdalake --profile cluster up`, then
`LAMBDALAKE_CONFIG=lambdalake.cluster.toml pytest tests/cluster` (what `make test` does after the
single profile's suite)."""

from __future__ import annotations

import pytest

from lambdalake.config import load_config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    clustered = load_config().clustered
    for item in items:
        if "tests/cluster/" in str(item.path):
            item.add_marker(pytest.mark.integration)
            if not clustered:
                item.add_marker(pytest.mark.skip(reason="the cluster profile is not the configured one: "
                                                        "LAMBDALAKE_CONFIG=lambdalake.cluster.toml"))
