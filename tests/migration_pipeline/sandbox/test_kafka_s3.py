"""Kafka (KRaft, from Maven jars) and S3 (moto server) from the sandbox, used for real."""

from __future__ import annotations

import boto3
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from migration_pipeline.sandbox import s3 as sandbox_s3
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique


def test_kafka_produce_consume_round_trip(sandbox: SandboxState) -> None:
    assert sandbox.kafka is not None
    bootstrap = sandbox.kafka.bootstrap
    topic = unique("roundtrip")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    sent = [(f"k{i}".encode(), bytes([i % 256]) * (i * 100 + 1)) for i in range(50)]
    for key, value in sent:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received: list[tuple[bytes | None, bytes | None]] = []
    try:
        while len(received) < len(sent):
            msg = consumer.poll(30)
            assert msg is not None, f"timed out after {len(received)} messages"
            assert msg.error() is None, msg.error()
            received.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    assert received == sent


def test_s3_put_get_ranged(sandbox: SandboxState) -> None:
    assert sandbox.s3 is not None
    s3 = boto3.client("s3", endpoint_url=sandbox.s3.endpoint, region_name=sandbox_s3.REGION,
                      aws_access_key_id=sandbox_s3.ACCESS_KEY, aws_secret_access_key=sandbox_s3.SECRET_KEY)
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket)
    body = bytes(range(256)) * 4096
    s3.put_object(Bucket=bucket, Key="repo/blob", Body=body)
    assert s3.get_object(Bucket=bucket, Key="repo/blob")["Body"].read() == body
    part = s3.get_object(Bucket=bucket, Key="repo/blob", Range="bytes=1000-1999")["Body"].read()
    assert part == body[1000:2000]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="repo/")["Contents"]]
    assert keys == ["repo/blob"]
