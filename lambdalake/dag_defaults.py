"""What every lambdalake DAG shares (dags/ stays declarative): owner, retries, start, one run at a time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def dag_defaults(retries: int = 2, retry_delay_seconds: int = 20) -> dict[str, Any]:
    """Keyword arguments for `@dag`: not backfilled, one run at a time, tasks owned by lambdalake."""
    return {
        "start_date": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {"owner": "lambdalake", "retries": retries,
                         "retry_delay": timedelta(seconds=retry_delay_seconds)},
    }


def clock(cron: str) -> str | None:
    """A DAG's schedule: the cron expression (or Airflow preset), or none when empty: the DAG then
    runs only when triggered."""
    return cron or None


def clock_or_asset(cron: str, asset_uri: str) -> Any:
    """A DAG's schedule: the cron expression (none when empty), or an asset event on asset_uri,
    whichever comes first."""
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

    if not cron:
        return [Asset(asset_uri)]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=Asset(asset_uri))
