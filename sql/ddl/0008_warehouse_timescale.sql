-- 0008, TimescaleDB flavour (run when the extension is available). NOT RUN on the development
-- machine (the extension cannot be installed there): written from the Timescale documentation.
-- Raw facts and minute rollups become hypertables; hour and day rollups are continuous aggregates
-- (hour on the minute table, day on the hour aggregate) with refresh, compression and retention
-- policies. Continuous aggregates cannot carry row level security, so the application reads them
-- through views with the plain flavour's table names and columns (warehouse.event_hour, ...), which
-- filter on the tenant of the transaction; the aggregates themselves (*_agg) are not granted.

CREATE FUNCTION warehouse.flavor() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 'timescale' $$;

SELECT create_hypertable('warehouse.facts', 'occurred_at', chunk_time_interval => INTERVAL '1 day');
SELECT create_hypertable('warehouse.event_minute', 'bucket', chunk_time_interval => INTERVAL '7 days');
SELECT create_hypertable('warehouse.revenue_minute', 'bucket', chunk_time_interval => INTERVAL '7 days');
SELECT create_hypertable('warehouse.traffic_minute', 'bucket', chunk_time_interval => INTERVAL '7 days');

-- Nothing to create: chunks are made as facts arrive. Kept so callers need not know the flavour.
CREATE FUNCTION warehouse.create_partitions(p_from date, p_months int) RETURNS int
LANGUAGE sql AS $$ SELECT 0 $$;
GRANT EXECUTE ON FUNCTION warehouse.create_partitions(date, int) TO __APP__;

CREATE MATERIALIZED VIEW warehouse.event_hour_agg
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

CREATE MATERIALIZED VIEW warehouse.event_day_agg
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
FROM warehouse.event_hour_agg
GROUP BY tenant_id, event_id, ticket_type_id, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.revenue_hour_agg
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

CREATE MATERIALIZED VIEW warehouse.revenue_day_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, ticket_type_id, currency,
	time_bucket(INTERVAL '1 day', bucket) AS bucket,
	sum(payment_count)::bigint AS payment_count, sum(refund_count)::bigint AS refund_count,
	sum(gross)::bigint AS gross, sum(refunds)::bigint AS refunds, sum(net)::bigint AS net,
	sum(full_amount)::bigint AS full_amount, sum(deposit_amount)::bigint AS deposit_amount,
	sum(remainder_amount)::bigint AS remainder_amount
FROM warehouse.revenue_hour_agg
GROUP BY tenant_id, event_id, ticket_type_id, currency, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.traffic_hour_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, source, device, time_bucket(INTERVAL '1 hour', bucket) AS bucket,
	sum(views)::bigint AS views, sum(unique_views)::bigint AS unique_views,
	sum(ticket_selected)::bigint AS ticket_selected,
	sum(checkout_started)::bigint AS checkout_started
FROM warehouse.traffic_minute
GROUP BY tenant_id, event_id, source, device, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

CREATE MATERIALIZED VIEW warehouse.traffic_day_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT tenant_id, event_id, source, device, time_bucket(INTERVAL '1 day', bucket) AS bucket,
	sum(views)::bigint AS views, sum(unique_views)::bigint AS unique_views,
	sum(ticket_selected)::bigint AS ticket_selected,
	sum(checkout_started)::bigint AS checkout_started
FROM warehouse.traffic_hour_agg
GROUP BY tenant_id, event_id, source, device, time_bucket(INTERVAL '1 day', bucket)
WITH NO DATA;

-- Refresh: late facts (up to an hour by default) land within these windows; anything older is
-- rebuilt by `aqstream backfill`, which refreshes the aggregates over the range it rebuilt. The
-- newest buckets are served by real-time aggregation (materialized_only = false).
SELECT add_continuous_aggregate_policy('warehouse.event_hour_agg', start_offset => INTERVAL '3 days',
	end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('warehouse.revenue_hour_agg', start_offset => INTERVAL '3 days',
	end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('warehouse.traffic_hour_agg', start_offset => INTERVAL '3 days',
	end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('warehouse.event_day_agg', start_offset => INTERVAL '7 days',
	end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('warehouse.revenue_day_agg', start_offset => INTERVAL '7 days',
	end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('warehouse.traffic_day_agg', start_offset => INTERVAL '7 days',
	end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');

-- Compression: facts and minutes stop changing once late facts are past; segment by what the
-- queries filter on.
ALTER TABLE warehouse.facts SET (timescaledb.compress,
	timescaledb.compress_segmentby = 'tenant_id, event_id',
	timescaledb.compress_orderby = 'occurred_at');
SELECT add_compression_policy('warehouse.facts', compress_after => INTERVAL '14 days');
ALTER TABLE warehouse.event_minute SET (timescaledb.compress,
	timescaledb.compress_segmentby = 'tenant_id, event_id',
	timescaledb.compress_orderby = 'bucket');
SELECT add_compression_policy('warehouse.event_minute', compress_after => INTERVAL '30 days');
ALTER TABLE warehouse.revenue_minute SET (timescaledb.compress,
	timescaledb.compress_segmentby = 'tenant_id, event_id',
	timescaledb.compress_orderby = 'bucket');
SELECT add_compression_policy('warehouse.revenue_minute', compress_after => INTERVAL '30 days');
ALTER TABLE warehouse.traffic_minute SET (timescaledb.compress,
	timescaledb.compress_segmentby = 'tenant_id, event_id',
	timescaledb.compress_orderby = 'bucket');
SELECT add_compression_policy('warehouse.traffic_minute', compress_after => INTERVAL '30 days');

-- Retention: raw facts and minutes go after ~13 months (backfill cannot rebuild beyond that);
-- hour and day aggregates stay (their refresh windows never reach dropped data).
SELECT add_retention_policy('warehouse.facts', drop_after => INTERVAL '400 days');
SELECT add_retention_policy('warehouse.event_minute', drop_after => INTERVAL '400 days');
SELECT add_retention_policy('warehouse.revenue_minute', drop_after => INTERVAL '400 days');
SELECT add_retention_policy('warehouse.traffic_minute', drop_after => INTERVAL '400 days');

-- The application's read path: the plain flavour's names, this tenant's rows only.
CREATE VIEW warehouse.event_hour WITH (security_barrier) AS SELECT * FROM warehouse.event_hour_agg WHERE tenant_id = app_tenant_id();
CREATE VIEW warehouse.event_day WITH (security_barrier) AS SELECT * FROM warehouse.event_day_agg WHERE tenant_id = app_tenant_id();
CREATE VIEW warehouse.revenue_hour WITH (security_barrier) AS
	SELECT * FROM warehouse.revenue_hour_agg WHERE tenant_id = app_tenant_id();
CREATE VIEW warehouse.revenue_day WITH (security_barrier) AS SELECT * FROM warehouse.revenue_day_agg WHERE tenant_id = app_tenant_id();
CREATE VIEW warehouse.traffic_hour WITH (security_barrier) AS
	SELECT * FROM warehouse.traffic_hour_agg WHERE tenant_id = app_tenant_id();
CREATE VIEW warehouse.traffic_day WITH (security_barrier) AS SELECT * FROM warehouse.traffic_day_agg WHERE tenant_id = app_tenant_id();
GRANT SELECT ON warehouse.event_hour, warehouse.event_day, warehouse.revenue_hour, warehouse.revenue_day, warehouse.traffic_hour,
	warehouse.traffic_day TO __APP__;
