"""Airflow: the batch layer's scheduler and the users' buttons (api-server, scheduler, dag-processor, triggerer)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lambdalake.commands import run
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.engines import Engine, Program, fetch_json
from lambdalake.errors import EngineError, SetupError

DAGS_FOLDER = PROJECT_ROOT / "dags"
#: the dashboard page (lambdalake.dashboard), served by the api-server on Airflow's port and login
PLUGINS_FOLDER = PROJECT_ROOT / "airflow_plugins"
#: the triggerer runs deferred tasks; without it the UI's health shows a red cross
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass(frozen=True)
class AirflowNode:
    """Where Airflow's components run and find their files and keys: the embedded ones, or containers."""
    executor: str
    bind_host: str
    base_url: str
    dags_folder: str
    plugins_folder: str
    log_folder: str
    passwords_file: str
    fernet_key: str
    jwt_secret: str
    api_secret_key: str
    #: the CeleryExecutor's broker (Redis); its results go to the metadata database
    celery_broker: str = ""
    #: the port a Celery worker's host serves its tasks' logs on, to the api-server
    worker_log_port: int = 8793
    #: `module.function` naming a task's host in its logs' URL; empty means Airflow's (the FQDN)
    hostname_callable: str = ""


def airflow_settings(config: Config, node: AirflowNode) -> dict[str, dict[str, Any]]:
    """airflow.cfg's sections and options, from the config: what `up` writes, and what `lambdalake
    compose` gives every Airflow container as AIRFLOW__SECTION__KEY variables."""
    airflow, pg = config.airflow, config.postgres
    settings: dict[str, dict[str, Any]] = {
        "core": {
            "dags_folder": node.dags_folder,
            "plugins_folder": node.plugins_folder,
            "executor": node.executor,
            "parallelism": airflow.parallelism,
            "load_examples": "False",
            "fernet_key": node.fernet_key,
            "simple_auth_manager_users": f"{airflow.admin_user}:admin",
            "simple_auth_manager_passwords_file": node.passwords_file,
            "execution_api_server_url": f"{node.base_url}/execution/",
            # scheduled DAGs (batch_recompute, iceberg_maintenance, platform_health) run on
            # their schedule from the first `up`; pause one in the UI to stop it
            "dags_are_paused_at_creation": "False",
        },
        "database": {
            "sql_alchemy_conn": f"postgresql+psycopg2://{pg.user}:{pg.password}@{config.address('postgres')}:{pg.port}"
                                f"/{pg.airflow_database}",
        },
        "api": {"host": node.bind_host, "port": airflow.port, "workers": 1, "secret_key": node.api_secret_key,
                "base_url": node.base_url},
        "api_auth": {"jwt_secret": node.jwt_secret},
        "logging": {"base_log_folder": node.log_folder},
        "dag_processor": {"refresh_interval": 30},
    }
    if node.hostname_callable:
        settings["core"]["hostname_callable"] = node.hostname_callable
    if node.executor == "CeleryExecutor":
        settings["celery"] = {
            "broker_url": node.celery_broker,
            "result_backend": f"db+postgresql://{pg.user}:{pg.password}@{config.address('postgres')}:{pg.port}"
                              f"/{pg.airflow_database}",
            "worker_concurrency": airflow.parallelism,
        }
        settings["logging"]["worker_log_server_port"] = node.worker_log_port
    return settings


def task_hostname() -> str:
    """A task's host, as its logs' URL names it: the configured host, where the worker's log server
    listens ([core] hostname_callable on the cluster profile; the FQDN may resolve elsewhere)."""
    from lambdalake.config import load_config

    return load_config().host


class Airflow(Engine):
    """Airflow's components; on the cluster profile, the CeleryExecutor's workers apart from them,
    Redis as their broker, and the log server of the workers' host."""

    name = "airflow"

    @property
    def program_names(self) -> tuple[str, ...]:  # type: ignore[override]
        names = tuple(f"airflow-{component}" for component in COMPONENTS)
        if not self.config.clustered:
            return names
        workers = tuple(f"airflow-worker-{n}" for n in range(1, self.config.celery_workers + 1))
        return ("redis", *names, *workers, "airflow-worker-logs")

    @property
    def executor(self) -> str:
        return "CeleryExecutor" if self.config.clustered else "LocalExecutor"

    @property
    def celery_broker(self) -> str:
        return f"redis://{self.config.host}:{self.config.cluster.redis_port}/0"

    @property
    def home(self) -> Path:
        return self.state_dir

    @property
    def url(self) -> str:
        return f"http://{self.config.address('airflow')}:{self.config.airflow.port}"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    def environment(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        # LocalExecutor workers run `airflow` and `python` from PATH: they must be this venv's
        return {"AIRFLOW_HOME": str(self.home), "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    def airflow_bin(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def programs(self) -> list[Program]:
        # the scheduler's, triggerer's and Celery workers' log servers bind every interface,
        # whatever the config says: they are skipped. LocalExecutor tasks write their logs here,
        # where the api-server reads them; Celery workers' logs are served by airflow-worker-logs
        extra = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"]}
        env = self.environment()
        components = [Program(f"airflow-{component}", [self.airflow_bin(), component, *extra.get(component, [])], env)
                      for component in COMPONENTS]
        if not self.config.clustered:
            return components
        cluster, host = self.config.cluster, self.config.host
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise SetupError("Redis (Celery's broker on the cluster profile) is not installed: "
                             "apt-get install -y redis-server")
        redis = Program("redis", [redis_server, "--bind", host, "--port", str(cluster.redis_port),
                                  "--dir", str(self.home), "--save", "", "--appendonly", "no"], stop_wait_seconds=10)
        workers = [Program(f"airflow-worker-{n}", [self.airflow_bin(), "celery", "worker", "--skip-serve-logs",
                                                   "--celery-hostname", f"worker-{n}@{host}", "--queues", "default"],
                           env, stop_wait_seconds=60)
                   for n in range(1, self.config.celery_workers + 1)]
        # the workers' log server, as `airflow celery worker` runs it, but on the configured host
        logs = Program("airflow-worker-logs", [str(Path(sys.executable).parent / "uvicorn"),
                                               "airflow.utils.serve_logs.log_server:get_app", "--factory",
                                               "--host", host, "--port", str(cluster.worker_log_port),
                                               "--no-access-log"], env, stop_wait_seconds=5)
        return [redis, *components, *workers, logs]

    def ports(self) -> dict[int, str]:
        ports = {self.config.airflow.port: "airflow.port"}
        if self.config.clustered:
            ports |= {self.config.cluster.redis_port: "cluster.redis_port",
                      self.config.cluster.worker_log_port: "cluster.worker_log_port"}
        return ports

    def endpoint(self) -> str:
        return self.url

    def secrets(self) -> dict[str, str]:
        """Keys and the admin password, made once per data dir and kept there (mode 600)."""
        if self.secrets_file.exists():
            return json.loads(self.secrets_file.read_text())
        from cryptography.fernet import Fernet

        values = {
            "fernet_key": Fernet.generate_key().decode(),
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
            "admin_password": secrets.token_urlsafe(12),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        self.secrets_file.touch(mode=0o600)
        self.secrets_file.write_text(json.dumps(values, indent=2))
        return values

    def admin_password(self) -> str:
        return self.secrets()["admin_password"]

    def prepare(self) -> None:
        config, airflow = self.config, self.config.airflow
        values = self.secrets()
        passwords = self.home / "passwords.json"
        passwords.touch(mode=0o600)
        passwords.write_text(json.dumps({airflow.admin_user: values["admin_password"]}))
        clustered = config.clustered
        sections = airflow_settings(config, AirflowNode(
            executor=self.executor, bind_host=config.host, base_url=self.url, dags_folder=str(DAGS_FOLDER),
            plugins_folder=str(PLUGINS_FOLDER), log_folder=str(self.config.logs_dir / "airflow"),
            passwords_file=str(passwords), fernet_key=values["fernet_key"], jwt_secret=values["jwt_secret"],
            api_secret_key=values["api_secret_key"], celery_broker=self.celery_broker if clustered else "",
            worker_log_port=config.cluster.worker_log_port,
            hostname_callable="lambdalake.engines.airflow.task_hostname" if clustered else ""))
        lines = ["# written by lambdalake from lambdalake.toml; edits are overwritten"]
        for section, options in sections.items():
            lines += [f"[{section}]", *(f"{key} = {value}" for key, value in options.items()), ""]
        (self.home / "airflow.cfg").write_text("\n".join(lines))
        # the metadata schema must exist before any component starts; migrate is idempotent
        run([self.airflow_bin(), "db", "migrate"], "airflow: migrating the metadata database",
            env={**os.environ, **self.environment()})

    def probe(self) -> str | None:
        report = fetch_json(f"{self.url}/api/v2/monitor/health")
        unhealthy = [part for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                     if (report.get(part) or {}).get("status") != "healthy"]
        if unhealthy:
            return f"not healthy: {', '.join(unhealthy)}"
        # The api-server builds its task-execution API on that API's first request: 4 s of CPU
        # here, in its one event loop, so every other request waits meanwhile. On a busy host the
        # first task of a DAG waited 14.6 s for it, and a token request beside it timed out (seen
        # in the tests). Ask it here, so `up` pays it instead.
        if fetch_json(f"{self.url}/execution/health", timeout=60).get("status") != "healthy":
            return "the task-execution API (/execution/health) is not healthy"
        return self.celery_probe() if self.config.clustered else None

    def celery_probe(self) -> str | None:
        """None when every Celery worker answers a ping through the broker, else who does not."""
        from celery import Celery

        # one quick try: a broker that is not up yet is reported, not waited for
        app = Celery(broker=self.celery_broker, broker_connection_timeout=2, broker_connection_retry=False,
                     broker_transport_options={"max_retries": 0})
        try:
            answers = app.control.ping(timeout=2.0) or []
        finally:
            app.close()
        names = {name.split("@", 1)[0] for answer in answers for name in answer}
        missing = [f"worker-{n}" for n in range(1, self.config.celery_workers + 1) if f"worker-{n}" not in names]
        return f"Celery workers not answering: {', '.join(missing)}" if missing else None

    def token(self) -> str:
        """A bearer token for the REST API, as the admin user."""
        response = httpx.post(f"{self.url}/auth/token", timeout=10,
                              json={"username": self.config.airflow.admin_user, "password": self.admin_password()})
        response.raise_for_status()
        return response.json()["access_token"]


class AirflowApi:
    """Airflow's REST API as the admin user: make a DAG ready, trigger it, wait for the run."""

    FINAL_STATES = ("success", "failed")

    def __init__(self, airflow: Airflow) -> None:
        self.client = httpx.Client(base_url=f"{airflow.url}/api/v2", timeout=30,
                                   headers={"Authorization": f"Bearer {airflow.token()}"})

    def prepare_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has loaded dag_id (it may still be parsing after `up`), unpause it."""
        deadline = time.monotonic() + timeout
        while self.client.get(f"/dags/{dag_id}").status_code == 404:
            if time.monotonic() > deadline:
                raise EngineError(f"Airflow has not loaded DAG {dag_id!r} after {timeout:.0f}s; "
                                  "see the airflow-dag-processor log")
            time.sleep(3)
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict[str, object] | None = None) -> str:
        response = self.client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances as the API lists them (task_id, map_index, state, id, ...)."""
        response = self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        response.raise_for_status()
        return response.json()["task_instances"]

    def asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The asset events the run's tasks emitted (uri, source_task_id, source_map_index, extra, ...)."""
        response = self.client.get("/assets/events", params={"source_dag_id": dag_id, "source_run_id": run_id})
        response.raise_for_status()
        return response.json()["asset_events"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        """A task instance's log, as the UI shows it: one event per line, and a failure's
        exception as `<type>: <message>` after its event."""
        response = self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                                   params={"map_index": map_index, "full_content": True},
                                   headers={"Accept": "application/json"})
        response.raise_for_status()
        content = response.json()["content"]
        lines = []
        for line in content:
            if not isinstance(line, dict):
                lines.append(str(line))
                continue
            lines.append(str(line.get("event", line)))
            lines.extend(f"{error.get('exc_type')}: {error.get('exc_value')}" for error in line.get("error_detail") or ())
        return "\n".join(lines)

    def wait(self, dag_id: str, run_id: str, timeout: float = 300,
             while_waiting: Callable[[], None] = lambda: None) -> str:
        """The run's final state (success or failed); while_waiting runs between polls."""
        deadline = time.monotonic() + timeout
        while (state := self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]) not in self.FINAL_STATES:
            if time.monotonic() > deadline:
                raise EngineError(f"{dag_id} run {run_id} is still {state} after {timeout:.0f}s")
            while_waiting()
            time.sleep(1)
        return state
