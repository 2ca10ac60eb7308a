"""The engines lambdalake runs, each behind one small interface, started in dependency order.

An engine knows its supervised programs, how to prepare its config and state before they
start, how to tell it is healthy, and what to create once it is (databases, topics, ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from lambdalake.config import Config


@dataclass(frozen=True)
class Program:
    """One long-running process, run in the foreground under supervisord."""

    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    directory: Path | None = None
    #: seconds between the stop signal and SIGKILL (Kafka and PostgreSQL need time to shut down cleanly)
    stop_wait_seconds: int = 20
    #: the signal that stops it cleanly (supervisord's stopsignal)
    stop_signal: str = "TERM"


class Engine(ABC):
    name: ClassVar[str]
    #: where the others keep their state (catalog, warehouse): started, and healthy, before them
    storage: ClassVar[bool] = False
    #: the supervisord program names of programs(), known before anything is installed (a class
    #: attribute, or a property where the profile sets how many nodes run)
    program_names: tuple[str, ...]

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def state_dir(self) -> Path:
        return self.config.data_dir / self.name

    @abstractmethod
    def programs(self) -> list[Program]:
        """The processes to supervise. Raises SetupError when what they run is not installed."""

    @abstractmethod
    def endpoint(self) -> str:
        """Where a client reaches the engine."""

    @abstractmethod
    def ports(self) -> dict[int, str]:
        """The TCP ports its programs listen on, on the configured host: port -> the config key
        that sets it (`up` refuses to start while another process holds one)."""

    def prepare(self) -> None:
        """Write config files and first-start state. Runs before every start; idempotent."""

    @abstractmethod
    def probe(self) -> str | None:
        """Ask the engine through its client: None when it answers as it should, else why not.

        May raise: any exception means the engine is not healthy (yet).
        """

    def health(self) -> str | None:
        """None when the engine is healthy, else why not, in one short line."""
        try:
            return self.probe()
        except Exception as exc:  # noqa: BLE001 - whatever the client raised, the engine did not answer
            text = str(exc).strip()
            return text.splitlines()[0] if text else type(exc).__name__

    def initialize(self) -> None:
        """Create what the platform needs inside the healthy engine. Idempotent."""

    def stop_order(self) -> list[tuple[str, ...]]:
        """The programs in the batches `down` stops them in, in order; a batch's programs stop at
        once. By default one at a time, in reverse start order (a Celery worker finishes its task
        while the api-server it reports to still answers)."""
        return [(name,) for name in reversed(self.program_names)]


def fetch_json(url: str, timeout: float = 3) -> Any:
    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def all_engines(config: Config) -> list[Engine]:
    """Every engine, in start order (each may use the ones before it)."""
    from lambdalake.engines.airflow import Airflow
    from lambdalake.engines.flink import Flink
    from lambdalake.engines.kafka import Kafka
    from lambdalake.engines.postgres import Postgres
    from lambdalake.engines.seaweedfs import SeaweedFS, runs_here
    from lambdalake.engines.trino import Trino

    store = [SeaweedFS(config)] if runs_here(config) else []
    return [Postgres(config), *store, Kafka(config), Flink(config), Trino(config), Airflow(config)]
