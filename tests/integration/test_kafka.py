from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from lambdalake.config import Config


def test_events_topic_exists_with_configured_partitions(config: Config) -> None:
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[config.kafka.events_topic].partitions) == config.kafka.events_partitions


def test_create_topic_produce_and_consume(config: Config) -> None:
    servers = config.kafka_bootstrap
    topic = f"test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": servers})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=config.kafka.replication_factor)])[topic].result(timeout=30)
    try:
        producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "acks": "all"})
        sent = [f"message-{i}".encode() for i in range(20)]
        for i, value in enumerate(sent):
            producer.produce(topic, key=str(i % 3).encode(), value=value)
        assert producer.flush(30) == 0

        consumer = Consumer({"bootstrap.servers": servers, "group.id": topic, "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        received: list[bytes] = []
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                received.append(message.value())
            if len(received) == len(sent):
                break
        consumer.close()
        assert sorted(received) == sorted(sent)
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)
