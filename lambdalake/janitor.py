"""The janitor: drops what no serving answer within `[serving] history_retention` needs any more.

Batch runs and reprocessing drop their own leftovers when they finish, but only once the
retention has passed, which is usually hours later. The janitor, run by the hourly
`iceberg_maintenance` DAG (and `lambdalake serving janitor`), drops them then: old batch tables
(lambdalake.serving.drop_batch_tables) and retired versions (lambdalake.kappa.drop_retired).
"""

from __future__ import annotations

from lambdalake import kappa, serving, state
from lambdalake.config import Config


def sweep(config: Config) -> list[str]:
    """Drop every batch table and retired version older than the retention; return what went."""
    dropped = []
    for step in state.live_steps(config):
        dropped += serving.drop_batch_tables(config, step.serving_view, keep=2)
        if step.serving_view == f"serving.{step.view_name}":  # the platform's views (tests' have suffixes)
            dropped += kappa.drop_retired(config, step.view_name, config.kappa.grace_period).dropped
    return dropped
