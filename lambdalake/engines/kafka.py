"""Kafka: the log. KRaft nodes that are each broker and controller, run from its Maven jars."""

from __future__ import annotations

import base64
import shlex
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from lambdalake.commands import run
from lambdalake.config import Config
from lambdalake.engines import Engine, Program
from lambdalake.install import engines_dir, jdk17_home, only_child

LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.storage
        level: WARN
"""


def new_cluster_id() -> str:
    """A random Kafka cluster id, as Kafka's own Uuid.randomUuid makes them: never starting with
    '-', which the storage tool's command line would take for an option (1 in 64 fresh data dirs
    failed `up` with "argument --cluster-id/-t: expected one argument")."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def broker_properties(config: Config, *, node_id: int, voters: str, listeners: str, advertised: str,
                      protocols: str, log_dir: str) -> dict[str, str]:
    """One combined broker and controller's settings, from the config: what `up` writes for its single
    node and `lambdalake compose` gives each of the cluster's brokers."""
    kafka = config.kafka
    internal = str(kafka.replication_factor)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": listeners,
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        "log.dirs": log_dir,
        "num.partitions": str(kafka.events_partitions),
        "auto.create.topics.enable": "false",
        # ingest_time is when the platform received a record: the broker's clock, never a
        # producer's; per partition it only grows, which the batch boundary relies on
        "log.message.timestamp.type": "LogAppendTime",
        # room for oversized records, so that the ingest job (not the broker) rejects them
        "message.max.bytes": "4194304",
        # the log is the system of record: Kappa reprocessing replays it from the start
        "log.retention.ms": "-1",
        # the internal topics (offsets, transactions) as replicated as the events
        "offsets.topic.replication.factor": internal,
        "transaction.state.log.replication.factor": internal,
        "transaction.state.log.min.isr": str(kafka.min_insync_replicas),
        "share.coordinator.state.topic.replication.factor": internal,
        "share.coordinator.state.topic.min.isr": str(kafka.min_insync_replicas),
        "min.insync.replicas": str(kafka.min_insync_replicas),
        "group.initial.rebalance.delay.ms": "0",
    }


def topic_config(config: Config) -> dict[str, str]:
    """The events topic's settings: kept forever (kappa views replay it from the first event, DESIGN.md
    section 6), and as many in-sync replicas as the config asks of an acks=all write."""
    return {"retention.ms": "-1", "retention.bytes": "-1", "min.insync.replicas": str(config.kafka.min_insync_replicas)}


@dataclass(frozen=True)
class Broker:
    """One broker of the embedded cluster: its number (from 1), program, state and ports."""
    node_id: int
    program: str
    state_dir: Path
    port: int
    controller_port: int


class Kafka(Engine):
    """The single profile's one node, or the cluster profile's [cluster] kafka_brokers nodes, each a
    broker and a controller (KRaft), on this host."""

    name = "kafka"

    @property
    def program_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*(broker.program for broker in self.brokers()), "kafka-heartbeat")

    def brokers(self) -> list[Broker]:
        config = self.config
        if not config.clustered:  # the single profile's layout, as before the cluster profile
            return [Broker(1, "kafka", self.state_dir, config.kafka.port, config.kafka.controller_port)]
        return [Broker(n + 1, f"kafka-{n + 1}", self.state_dir / f"broker-{n + 1}", *config.broker_ports(n))
                for n in range(config.kafka_brokers)]

    def stop_order(self) -> list[tuple[str, ...]]:
        # the brokers at once: they are also the controller quorum, and one by one the last of
        # them outlives the quorum, waits its whole stop timeout for a controlled shutdown no
        # controller can grant, and is killed (seen in CI: 60 s, then SIGKILL and log recovery)
        return [("kafka-heartbeat",), tuple(broker.program for broker in self.brokers())]

    @property
    def bootstrap_servers(self) -> str:
        return self.config.kafka_bootstrap

    @property
    def heap(self) -> str:
        return self.config.cluster.kafka_heap if self.config.clustered else self.config.kafka.heap

    def _java(self, main: str, *args: str, log_config: Path, heap: str = "256m") -> list[str]:
        libs = only_child(engines_dir(self.config), "kafka-*") / "libs"
        return [str(jdk17_home(self.config) / "bin" / "java"), f"-Xms{heap}", f"-Xmx{heap}",
                *shlex.split(self.config.java.engine_opts), f"-Dlog4j2.configurationFile={log_config}", "-cp", f"{libs}/*", main, *args]

    def programs(self) -> list[Program]:
        commands = [Program(name=broker.program, stop_wait_seconds=60,
                            command=self._java("kafka.Kafka", str(broker.state_dir / "server.properties"),
                                               log_config=broker.state_dir / "log4j2.yaml", heap=self.heap))
                    for broker in self.brokers()]
        # the heartbeat (lambdalake.heartbeat) keeps the speed layer's watermarks moving on idle partitions
        heartbeat = [sys.executable, "-m", "lambdalake.heartbeat"]
        return [*commands, Program(name="kafka-heartbeat", command=heartbeat, stop_wait_seconds=5)]

    def ports(self) -> dict[int, str]:
        # brokers after the first: [kafka] port + N * [cluster] kafka_port_step
        return {port: key for broker in self.brokers()
                for port, key in ((broker.port, "kafka.port"), (broker.controller_port, "kafka.controller_port"))}

    def endpoint(self) -> str:
        return self.bootstrap_servers

    def server_properties(self, broker: Broker) -> str:
        host = self.config.host
        voters = ",".join(f"{b.node_id}@{host}:{b.controller_port}" for b in self.brokers())
        properties = broker_properties(
            self.config, node_id=broker.node_id, voters=voters,
            listeners=f"PLAINTEXT://{host}:{broker.port},CONTROLLER://{host}:{broker.controller_port}",
            advertised=f"PLAINTEXT://{host}:{broker.port}", protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            log_dir=str(broker.state_dir / "log"))
        return "\n".join(["# written by lambdalake from lambdalake.toml; edits are overwritten",
                          *(f"{key}={value}" for key, value in properties.items()), ""])

    def cluster_id(self) -> str:
        """The id every broker's storage is formatted with, made once per data dir."""
        path = self.state_dir / "cluster-id"
        if not path.exists():
            path.write_text(new_cluster_id())
        return path.read_text().strip()

    def prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for broker in self.brokers():
            broker.state_dir.mkdir(parents=True, exist_ok=True)
            properties = broker.state_dir / "server.properties"
            properties.write_text(self.server_properties(broker))
            (broker.state_dir / "log4j2.yaml").write_text(LOG4J2)
            if (broker.state_dir / "log" / "meta.properties").exists():
                continue
            run(self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id(), "-c", str(properties),
                           log_config=broker.state_dir / "log4j2.yaml"),
                f"kafka: formatting {broker.program}'s storage")

    def admin(self):  # type: ignore[no-untyped-def]
        from confluent_kafka.admin import AdminClient

        # log_level 0: a broker that is still starting is reported by health(), not by librdkafka on stderr
        return AdminClient({"bootstrap.servers": self.bootstrap_servers, "socket.timeout.ms": 3000, "log_level": 0})

    def probe(self) -> str | None:
        metadata = self.admin().list_topics(timeout=3)
        missing = len(self.brokers()) - len(metadata.brokers)
        return f"{missing} of {len(self.brokers())} brokers not in the cluster metadata" if missing > 0 else None

    def initialize(self) -> None:
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        topic = self.config.kafka.events_topic
        if topic in admin.list_topics(timeout=10).topics:
            return
        # kept forever: kappa views replay it from the first event (DESIGN.md section 6)
        kafka = self.config.kafka
        futures = admin.create_topics([NewTopic(topic, num_partitions=kafka.events_partitions,
                                                replication_factor=kafka.replication_factor,
                                                config=topic_config(self.config))])
        futures[topic].result(timeout=30)
