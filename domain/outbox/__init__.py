"""Transactional outbox and consumer inbox: the bridge between the database and Kafka."""
