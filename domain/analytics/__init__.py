"""Analytics: tracked actions (validation, bot filtering, source and device) and the mapping of
domain and tracking records to warehouse facts. No Kafka, no FastAPI."""
