"""Clients for the platform's servers, built from settings at start-up (never at import)."""

from __future__ import annotations

from typing import Any

import boto3
import redis
import redis.asyncio
from botocore.config import Config as BotoConfig

from core.settings import Settings


def make_redis(settings: Settings) -> redis.Redis:
    if not settings.redis_url:
        raise RuntimeError("AQSTREAM_REDIS_URL is not set")
    return redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


def make_async_redis(settings: Settings) -> redis.asyncio.Redis:
    """The same server and timeouts as ``make_redis``, for code on an event loop."""
    if not settings.redis_url:
        raise RuntimeError("AQSTREAM_REDIS_URL is not set")
    return redis.asyncio.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


def make_s3(settings: Settings, *, timeout_s: float = 10.0) -> Any:
    if not settings.s3_endpoint:
        raise RuntimeError("AQSTREAM_S3_ENDPOINT is not set")
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key.get_secret_value(),
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def ensure_bucket(settings: Settings) -> bool:
    """Create the platform bucket if missing; True when it was created."""
    s3 = make_s3(settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.s3_bucket in existing:
        return False
    s3.create_bucket(Bucket=settings.s3_bucket)
    return True


def kafka_cluster(settings: Settings, timeout_ms: int = 2000) -> dict[str, Any]:
    """Describe the Kafka cluster: proves the broker answers the protocol, not just TCP."""
    from kafka.admin import KafkaAdminClient

    if not settings.kafka_bootstrap:
        raise RuntimeError("AQSTREAM_KAFKA_BOOTSTRAP is not set")
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        request_timeout_ms=timeout_ms,
        client_id="aqstream-ready",
    )
    try:
        return admin.describe_cluster()
    finally:
        admin.close()
