"""Kafka: the log. One KRaft node that is broker and controller, run from its Maven jars."""

from __future__ import annotations

import base64
import sys
import uuid
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


class Kafka(Engine):
    name = "kafka"
    program_names = ("kafka", "kafka-heartbeat")

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def bootstrap_servers(self) -> str:
        return self.config.kafka_bootstrap

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        libs = only_child(engines_dir(self.config), "kafka-*") / "libs"
        return [str(jdk17_home(self.config) / "bin" / "java"), f"-Xms{heap}", f"-Xmx{heap}",
                f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.yaml'}",
                "-cp", f"{libs}/*", main, *args]

    def programs(self) -> list[Program]:
        command = self._java("kafka.Kafka", str(self.properties_file), heap=self.config.kafka.heap)
        # the heartbeat (lambdalake.heartbeat) keeps the speed layer's watermarks moving on idle partitions
        heartbeat = [sys.executable, "-m", "lambdalake.heartbeat"]
        return [Program(name="kafka", command=command, stop_wait_seconds=60),
                Program(name="kafka-heartbeat", command=heartbeat, stop_wait_seconds=5)]

    def endpoint(self) -> str:
        return self.bootstrap_servers

    def server_properties(self) -> str:
        host, kafka = self.config.host, self.config.kafka
        properties = broker_properties(
            self.config, node_id=1, voters=f"1@{host}:{kafka.controller_port}",
            listeners=f"PLAINTEXT://{host}:{kafka.port},CONTROLLER://{host}:{kafka.controller_port}",
            advertised=f"PLAINTEXT://{host}:{kafka.port}", protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            log_dir=str(self.log_dir))
        return "\n".join(["# written by lambdalake from lambdalake.toml; edits are overwritten",
                          *(f"{key}={value}" for key, value in properties.items()), ""])

    def prepare(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(self.server_properties())
        (self.state_dir / "log4j2.yaml").write_text(LOG4J2)
        if (self.log_dir / "meta.properties").exists():
            return
        run(self._java("kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(self.properties_file)),
            "kafka: formatting storage")

    def admin(self):  # type: ignore[no-untyped-def]
        from confluent_kafka.admin import AdminClient

        # log_level 0: a broker that is still starting is reported by health(), not by librdkafka on stderr
        return AdminClient({"bootstrap.servers": self.bootstrap_servers, "socket.timeout.ms": 3000, "log_level": 0})

    def probe(self) -> str | None:
        metadata = self.admin().list_topics(timeout=3)
        return None if metadata.brokers else "no broker in the cluster metadata"

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
