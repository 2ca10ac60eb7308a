"""The lambdalake dashboard inside Airflow: a page at /lambdalake/ on Airflow's own port and login,
and "Views" in Airflow's navigation. The page is lambdalake.dashboard's."""

from __future__ import annotations

import asyncio

from airflow.api_fastapi.core_api.security import requires_authenticated
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI(title="lambdalake dashboard")


@app.get("/", response_class=HTMLResponse, dependencies=[Depends(requires_authenticated())])
async def dashboard(hours: float = 6) -> str:
    """Every view's freshness against its target over the last `hours`, its B moves, and links."""
    from lambdalake.config import load_config
    from lambdalake.dashboard import render_html

    # blocking clients (Trino, Kafka, PostgreSQL): off the api-server's event loop
    return await asyncio.to_thread(render_html, load_config(), min(max(hours, 0.25), 24 * 30))


class LambdalakeDashboard(AirflowPlugin):
    name = "lambdalake"
    fastapi_apps = [{"app": app, "url_prefix": "/lambdalake", "name": "lambdalake dashboard"}]
    external_views = [{"name": "lambdalake views", "href": "lambdalake/", "destination": "nav",
                       "url_route": "lambdalake-views", "category": "browse"}]
