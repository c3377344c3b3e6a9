"""A record whose handling keeps failing: retried, then dead-lettered with its error, the stream
goes on; once the cause is fixed, `aqstream dlq replay` re-drives it, to the failed agent only."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer, TopicPartition

from domain.payment.providers import Providers
from streams.dlq import replay_dead_letters
from streams.topics import dlq_topic
from tests.factories import V1, Organizer, auth, registered
from tests.notification.conftest import link_telegram
from tests.worker.conftest import scalar, wait_for


class ProviderDown:
    """A payment provider that fails every call (the cause to fix)."""

    name = "sandbox"
    calls = 0

    def create_payment(self, request):
        ProviderDown.calls += 1
        raise RuntimeError("payment provider down")

    def close(self) -> None:
        pass


def _dead_letters(settings) -> list:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, fetch_max_wait_ms=100)
    try:
        name = dlq_topic(settings).name
        parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name))]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        out = []
        for _ in range(5):
            for batch in consumer.poll(timeout_ms=200).values():
                out.extend(batch)
        return out
    finally:
        consumer.close()


@pytest.mark.slow
def test_failing_record_is_dead_lettered_stream_goes_on_and_replay_redrives_it(
    client, api, admin, owner_engine, telegram, worker_settings, relays, workers
) -> None:
    org = Organizer(client, api, admin)
    paid, paid_type = org.published_event(capacity=5, price_amount=5000)
    free, free_type = org.published_event(capacity=5)
    user = api.register("unlucky")
    chat = link_telegram(owner_engine, user)
    # Started once the chat is linked: a worker that handled the sign-up first would send no
    # Telegram welcome (a race the suite lost on a loaded machine).
    relays(worker_settings, "relay-dlq")
    worker = workers(worker_settings, providers=Providers([ProviderDown()]))
    stuck = registered(client, paid["id"], user, ticket_type_id=paid_type["id"])
    # Behind it, on the same agent: a free registration, handled although the first failed.
    other = api.register("lucky")
    later = registered(client, free["id"], other, ticket_type_id=free_type["id"])

    def inbox(registration_id: str) -> int:
        return scalar(
            owner_engine,
            "SELECT count(*) FROM inbox WHERE consumer = 'worker.payment-saga' AND event_id IN "
            "(SELECT id FROM outbox WHERE aggregate_id = :r AND event_type = 'registration.created')",
            r=registration_id,
        )

    wait_for(lambda: inbox(later["id"]), 60, "the stream to go on past the failing record")
    [letter] = wait_for(lambda: _dead_letters(worker_settings), 60, "the dead letter")
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlq_consumer"] == "payment-saga"
    assert headers["dlq_topic"] == f"{worker_settings.topic_namespace}.registration.v1"
    assert headers["dlq_attempts"] == str(worker_settings.worker_retry_attempts)
    assert "payment provider down" in headers["dlq_error"]
    assert headers["event_type"] == "registration.created"
    assert letter.key.decode() == stuck["id"]
    assert json.loads(letter.value)["registration_id"] == stuck["id"]
    assert ProviderDown.calls == worker_settings.worker_retry_attempts
    assert inbox(stuck["id"]) == 0  # the failed transaction left nothing behind
    assert worker.processor.dead_letters == 1
    wait_for(lambda: telegram.to(chat), 60, "the welcome (the other agent was not held up)")

    worker.deps.providers = client.app.state.payments.providers  # the cause is fixed
    assert replay_dead_letters(worker_settings, idle_s=1.0) == 1
    wait_for(lambda: inbox(stuck["id"]), 60, "the replayed record to be handled")
    payments = client.get(f"{V1}/registrations/{stuck['id']}/payments", headers=auth(user))
    assert [p["status"] for p in payments.json()["items"]] == ["pending"]
    assert replay_dead_letters(worker_settings, idle_s=1.0) == 0  # replayed once only
    # The replay was addressed to the saga: the notification agent did not see it again, and
    # the welcome went out once.
    assert len(telegram.to(chat)) == 1
    assert worker.processor.dead_letters == 1
