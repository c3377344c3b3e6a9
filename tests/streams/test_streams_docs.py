"""docs/asyncapi.yaml is generated, current and complete; docs/streams.md names every topic and
its consumer example works against the broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from core.settings import PROJECT_ROOT, Settings
from streams.asyncapi import asyncapi_yaml
from streams.contracts import event_classes, schema_file
from streams.relay import Relay
from streams.topics import catalog, tracking_topic
from tests.streams.conftest import topic_of, unsent, write_events

DOCS = PROJECT_ROOT / "docs"


def test_asyncapi_document_is_committed_and_current() -> None:
    committed = (DOCS / "asyncapi.yaml").read_text()
    assert committed == asyncapi_yaml(), "docs/asyncapi.yaml is stale: run `aqstream schemas`"


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_asyncapi_document_has_every_topic_and_event_and_resolves() -> None:
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    topics = catalog(Settings.model_construct())
    channels = document["channels"]
    tracking = tracking_topic(Settings.model_construct())  # the API's own topic, no aggregate
    assert {c["address"] for c in channels.values()} == {t.name for t in [*topics, tracking]}
    assert set(channels["tracking"]["messages"]) == set(tracking.event_types)
    for topic in topics:
        channel = channels[topic.aggregate_type]
        assert set(channel["messages"]) == set(topic.event_types)
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        assert f"publish-{topic.aggregate_type}" in document["operations"]
    messages = document["components"]["messages"]
    for cls in event_classes():
        message = messages[f"{cls.event_type}.v{cls.schema_version}"]
        assert message["name"] == cls.event_type
        payload = message["payload"]
        Draft7Validator.check_schema(payload)  # AsyncAPI's schema dialect
        Draft202012Validator.check_schema(payload)
        committed = yaml.safe_load(schema_file(cls.event_type, cls.schema_version).read_text())
        assert payload["properties"] == committed["properties"]
        assert payload["required"] == committed["required"]
    for ref in _refs(document):
        _resolve(document, ref)
    headers = document["components"]["schemas"]["headers"]["properties"]
    assert {"event_id", "event_type", "tenant_id", "correlation_id", "schema_version"} <= set(
        headers
    )


def test_the_streams_doc_names_every_topic() -> None:
    text = (DOCS / "streams.md").read_text()
    missing = [t.name for t in catalog(Settings.model_construct()) if f"`{t.name}`" not in text]
    assert missing == [], f"docs/streams.md does not list {missing}"


def _example() -> str:
    text = (DOCS / "streams.md").read_text()
    match = re.search(
        r"<!-- example: consume -->\n```python\n(.*?)```\n<!-- /example -->", text, re.S
    )
    assert match, "the consumer example is gone from docs/streams.md"
    return match.group(1)


@pytest.mark.slow
def test_the_consumer_example_prints_what_the_relay_published(relay_settings, owner_conn) -> None:
    written = write_events(owner_conn, [uuid.uuid4() for _ in range(3)], 2)
    relay = Relay(relay_settings)
    try:
        while relay.relay_once():
            pass
    finally:
        relay.close()
    assert unsent(owner_conn, written.ids) == 0
    topic = topic_of(relay_settings)
    code = _example().replace('"aqstream.registration.v1"', f'"{topic}"')
    assert topic in code
    code = code.replace('"my-team.registrations"', f'"docs-example-{uuid.uuid4().hex[:8]}"')
    env = {**os.environ, "KAFKA_BOOTSTRAP": relay_settings.kafka_bootstrap}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    printed = {line.split()[2] for line in lines}
    assert written.ids <= printed, result.stdout
    for line in lines:
        event_type, aggregate, _event_id, registration_id = line.split()
        if aggregate in written.by_aggregate:
            assert event_type == "registration.confirmed"
            assert registration_id == aggregate
    assert len(lines) == len(printed)  # each event printed once
