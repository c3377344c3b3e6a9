-- 0008, TimescaleDB flavour (run when the extension is loaded: migration 0008 chooses). It cannot
-- run on the development machine (no registry there ships TimescaleDB); every construct follows
-- TimescaleDB's documentation (linked in docs/analytics.md, "TimescaleDB"), and it is checked on
-- a real server. Raw facts and minute rollups are hypertables; the hour and day rollups are
-- continuous aggregates (hour on the minute hypertable, day on the hour aggregate: hierarchical)
-- with refresh policies and real-time aggregation, under the plain flavour's relation names and
-- columns, so the sink, backfill and the `analytics` views (0012) need not know the flavour.
-- No row level security anywhere: TimescaleDB refuses it on a hypertable that has continuous
-- aggregates or a columnstore (tenancy: 0012).

CREATE FUNCTION warehouse.flavor() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 'timescale' $$;

-- create_hypertable with a dimension builder (by_range, TimescaleDB 2.13+).
SELECT create_hypertable('warehouse.facts', by_range('occurred_at', INTERVAL '1 day'));
SELECT create_hypertable('warehouse.event_minute', by_range('bucket', INTERVAL '7 days'));
SELECT create_hypertable('warehouse.revenue_minute', by_range('bucket', INTERVAL '7 days'));
SELECT create_hypertable('warehouse.traffic_minute', by_range('bucket', INTERVAL '7 days'));

-- Nothing to create: chunks are made as facts arrive. Kept so callers need not know the flavour.
CREATE FUNCTION warehouse.create_partitions(p_from date, p_months int) RETURNS int
LANGUAGE sql AS $$ SELECT 0 $$;
REVOKE ALL ON FUNCTION warehouse.create_partitions(date, int) FROM PUBLIC;

CREATE MATERIALIZED VIEW warehouse.event_hour
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, ticket_type_id, time_bucket(INTERVAL '1 hour', bucket) AS bucket,
	sum(views)::bigint AS views, sum(unique_views)::bigint AS unique_views,
	sum(ticket_selected)::bigint AS ticket_selected,
	sum(checkout_started)::bigint AS checkout_started,
	sum(reservations)::bigint AS reservations, sum(reserved_seats)::bigint AS reserved_seats,
	sum(registrations)::bigint AS registrations,
	sum(registered_seats)::bigint AS registered_seats,
	sum(confirmations)::bigint AS confirmations, sum(confirmed_seats)::bigint AS confirmed_seats,
	sum(cancellations)::bigint AS cancellations, sum(cancelled_seats)::bigint AS cancelled_seats,
	sum(checkins)::bigint AS checkins, sum(checked_in_seats)::bigint AS checked_in_seats,
	sum(waitlist_joined)::bigint AS waitlist_joined, sum(waitlist_left)::bigint AS waitlist_left,
	sum(paid_registrations)::bigint AS paid_registrations
FROM warehouse.event_minute
GROUP BY tenant_id, event_id, ticket_type_id, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.event_day
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, ticket_type_id, time_bucket(INTERVAL '1 day', bucket) AS bucket,
	sum(views)::bigint AS views, sum(unique_views)::bigint AS unique_views,
	sum(ticket_selected)::bigint AS ticket_selected,
	sum(checkout_started)::bigint AS checkout_started,
	sum(reservations)::bigint AS reservations, sum(reserved_seats)::bigint AS reserved_seats,
	sum(registrations)::bigint AS registrations,
	sum(registered_seats)::bigint AS registered_seats,
	sum(confirmations)::bigint AS confirmations, sum(confirmed_seats)::bigint AS confirmed_seats,
	sum(cancellations)::bigint AS cancellations, sum(cancelled_seats)::bigint AS cancelled_seats,
	sum(checkins)::bigint AS checkins, sum(checked_in_seats)::bigint AS checked_in_seats,
	sum(waitlist_joined)::bigint AS waitlist_joined, sum(waitlist_left)::bigint AS waitlist_left,
	sum(paid_registrations)::bigint AS paid_registrations
FROM warehouse.event_hour
GROUP BY tenant_id, event_id, ticket_type_id, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.revenue_hour
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, ticket_type_id, currency,
	time_bucket(INTERVAL '1 hour', bucket) AS bucket,
	sum(payment_count)::bigint AS payment_count, sum(refund_count)::bigint AS refund_count,
	sum(gross)::bigint AS gross, sum(refunds)::bigint AS refunds, sum(net)::bigint AS net,
	sum(full_amount)::bigint AS full_amount, sum(deposit_amount)::bigint AS deposit_amount,
	sum(remainder_amount)::bigint AS remainder_amount
FROM warehouse.revenue_minute
GROUP BY tenant_id, event_id, ticket_type_id, currency, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.revenue_day
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, ticket_type_id, currency,
	time_bucket(INTERVAL '1 day', bucket) AS bucket,
	sum(payment_count)::bigint AS payment_count, sum(refund_count)::bigint AS refund_count,
	sum(gross)::bigint AS gross, sum(refunds)::bigint AS refunds, sum(net)::bigint AS net,
	sum(full_amount)::bigint AS full_amount, sum(deposit_amount)::bigint AS deposit_amount,
	sum(remainder_amount)::bigint AS remainder_amount
FROM warehouse.revenue_hour
GROUP BY tenant_id, event_id, ticket_type_id, currency, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.traffic_hour
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, source, device, time_bucket(INTERVAL '1 hour', bucket) AS bucket,
	sum(views)::bigint AS views, sum(unique_views)::bigint AS unique_views,
	sum(ticket_selected)::bigint AS ticket_selected,
	sum(checkout_started)::bigint AS checkout_started
FROM warehouse.traffic_minute
GROUP BY tenant_id, event_id, source, device, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.traffic_day
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, source, device, time_bucket(INTERVAL '1 day', bucket) AS bucket,
	sum(views)::bigint AS views, sum(unique_views)::bigint AS unique_views,
	sum(ticket_selected)::bigint AS ticket_selected,
	sum(checkout_started)::bigint AS checkout_started
FROM warehouse.traffic_hour
GROUP BY tenant_id, event_id, source, device, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

-- Refresh: late facts (up to AQSTREAM_ANALYTICS_LATE_S, an hour by default) land within these
-- windows; anything older is rebuilt by `aqstream backfill` or `aqstream warehouse reconcile`,
-- which refresh the aggregates over the range they rebuilt. The newest buckets, not yet
-- materialized, are served by real-time aggregation (materialized_only = false above).
SELECT add_continuous_aggregate_policy('warehouse.event_hour', start_offset => INTERVAL '3 days',
	end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('warehouse.revenue_hour', start_offset => INTERVAL '3 days',
	end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('warehouse.traffic_hour', start_offset => INTERVAL '3 days',
	end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('warehouse.event_day', start_offset => INTERVAL '7 days',
	end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('warehouse.revenue_day', start_offset => INTERVAL '7 days',
	end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('warehouse.traffic_day', start_offset => INTERVAL '7 days',
	end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');

-- Columnstore (hypercore, TimescaleDB 2.18+): only chunks far older than the late-arrival window
-- are converted, so the sink never rewrites a columnstore chunk (backfill and reconcile may: DML
-- on the columnstore is supported, only slower). Segmented by what every query filters on.
-- A policy TimescaleDB may have added by itself is replaced by ours (remove, then add).
ALTER TABLE warehouse.facts SET (timescaledb.enable_columnstore = true,
	timescaledb.segmentby = 'tenant_id, event_id', timescaledb.orderby = 'occurred_at');
CALL remove_columnstore_policy('warehouse.facts', if_exists => true);
CALL add_columnstore_policy('warehouse.facts', after => INTERVAL '14 days');
ALTER TABLE warehouse.event_minute SET (timescaledb.enable_columnstore = true,
	timescaledb.segmentby = 'tenant_id, event_id', timescaledb.orderby = 'bucket');
CALL remove_columnstore_policy('warehouse.event_minute', if_exists => true);
CALL add_columnstore_policy('warehouse.event_minute', after => INTERVAL '30 days');
ALTER TABLE warehouse.revenue_minute SET (timescaledb.enable_columnstore = true,
	timescaledb.segmentby = 'tenant_id, event_id', timescaledb.orderby = 'bucket');
CALL remove_columnstore_policy('warehouse.revenue_minute', if_exists => true);
CALL add_columnstore_policy('warehouse.revenue_minute', after => INTERVAL '30 days');
ALTER TABLE warehouse.traffic_minute SET (timescaledb.enable_columnstore = true,
	timescaledb.segmentby = 'tenant_id, event_id', timescaledb.orderby = 'bucket');
CALL remove_columnstore_policy('warehouse.traffic_minute', if_exists => true);
CALL add_columnstore_policy('warehouse.traffic_minute', after => INTERVAL '30 days');

-- Retention: raw facts and minutes go after ~13 months (backfill cannot rebuild beyond that);
-- the hour and day aggregates stay (their refresh windows never reach dropped data).
SELECT add_retention_policy('warehouse.facts', drop_after => INTERVAL '400 days');
SELECT add_retention_policy('warehouse.event_minute', drop_after => INTERVAL '400 days');
SELECT add_retention_policy('warehouse.revenue_minute', drop_after => INTERVAL '400 days');
SELECT add_retention_policy('warehouse.traffic_minute', drop_after => INTERVAL '400 days');
