"""Maintenance settings reach SQL, so each is checked first."""

from __future__ import annotations

import pytest

from lambdalake.config import MaintenanceConfig
from lambdalake.errors import ConfigError
from lambdalake.maintenance import checked_settings


def test_the_defaults_are_valid() -> None:
    assert checked_settings(MaintenanceConfig()) == MaintenanceConfig()


@pytest.mark.parametrize(("key", "value"), [("orphan_retention", "6 hours"), ("orphan_retention", "1h'); drop"),
                                            ("file_size_threshold", "big")])
def test_a_bad_setting_names_its_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"maintenance.{key}"):
        checked_settings(MaintenanceConfig(**{key: value}))
