"""Every error lambdalake raises on purpose. The CLI turns them into a message and exit code 1."""

from __future__ import annotations


class LambdalakeError(Exception):
    """Base of the project's errors: the message says what failed, the value, and the fix."""


class ConfigError(LambdalakeError):
    """The config file or an environment override is invalid."""


class SetupError(LambdalakeError):
    """An engine could not be fetched or installed."""


class QueryError(LambdalakeError):
    """An engine refused a query (bad SQL, missing table, ...); the message is the engine's, and
    error_name its code (Trino's, e.g. ICEBERG_COMMIT_ERROR) when it gave one."""

    def __init__(self, message: str, error_name: str | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name


class EngineError(LambdalakeError):
    """An engine did not start, or did not become healthy in time."""
