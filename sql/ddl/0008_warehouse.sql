-- 0008: the analytics warehouse, shared by both flavours. Raw facts (one row per
-- warehouse.facts.Fact; a fact stored twice is one row) and the minute rollups the sink recomputes
-- absolutely from them. The flavour files add partitioning and the hour/day rollups:
-- 0008_warehouse_postgres.sql (native partitions, rollup tables kept by the sink) or
-- 0008_warehouse_timescale.sql (hypertables, continuous aggregates, policies).
-- Every table carries tenant_id. No row level security here: TimescaleDB refuses it on
-- hypertables with continuous aggregates or a columnstore, so tenant isolation rests on
-- privileges and tenant-filtering views, the same on both flavours (0012: the application role
-- has no privilege in this schema; it reads the views of the `analytics` schema).
-- Buckets are UTC: date_bin from a UTC midnight here, time_bucket (UTC) in Timescale.

CREATE SCHEMA warehouse;

CREATE TABLE warehouse.facts (
	tenant_id UUID NOT NULL,
	fact_id UUID NOT NULL,
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
	kind VARCHAR(32) NOT NULL,
	event_id UUID NOT NULL,
	ticket_type_id UUID,
	registration_id UUID,
	quantity INTEGER NOT NULL DEFAULT 1,
	amount BIGINT NOT NULL DEFAULT 0,
	currency VARCHAR(3),
	purpose VARCHAR(16),
	visitor_id VARCHAR(128),
	session_id VARCHAR(128),
	source VARCHAR(128),
	device VARCHAR(16),
	stored_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	CONSTRAINT pk_wh_facts PRIMARY KEY (tenant_id, fact_id, occurred_at),
	CONSTRAINT ck_wh_facts_kind CHECK (kind IN (
		'page_view', 'ticket_selected', 'checkout_started', 'reservation', 'registration',
		'confirmation', 'cancellation', 'payment', 'refund', 'checkin', 'waitlist_joined',
		'waitlist_left')),
	CONSTRAINT ck_wh_facts_quantity CHECK (quantity >= 0),
	CONSTRAINT ck_wh_facts_amount CHECK (amount >= 0)
) __FACTS_PARTITIONING__;
-- The minute recomputation reads one event's minute; the unique-view rule looks back 30 minutes
-- for the same visitor on the same event.
CREATE INDEX ix_wh_facts_event_time ON warehouse.facts (tenant_id, event_id, occurred_at);
CREATE INDEX ix_wh_facts_visitor_views ON warehouse.facts (tenant_id, event_id, visitor_id, occurred_at)
	WHERE kind = 'page_view';

-- Per tenant, event, ticket type (NULL: the fact names none) and minute.
CREATE TABLE warehouse.event_minute (
	tenant_id UUID NOT NULL,
	event_id UUID NOT NULL,
	ticket_type_id UUID,
	bucket TIMESTAMP WITH TIME ZONE NOT NULL,
	views BIGINT NOT NULL DEFAULT 0,
	unique_views BIGINT NOT NULL DEFAULT 0,
	ticket_selected BIGINT NOT NULL DEFAULT 0,
	checkout_started BIGINT NOT NULL DEFAULT 0,
	reservations BIGINT NOT NULL DEFAULT 0,
	reserved_seats BIGINT NOT NULL DEFAULT 0,
	registrations BIGINT NOT NULL DEFAULT 0,
	registered_seats BIGINT NOT NULL DEFAULT 0,
	confirmations BIGINT NOT NULL DEFAULT 0,
	confirmed_seats BIGINT NOT NULL DEFAULT 0,
	cancellations BIGINT NOT NULL DEFAULT 0,
	cancelled_seats BIGINT NOT NULL DEFAULT 0,
	checkins BIGINT NOT NULL DEFAULT 0,
	checked_in_seats BIGINT NOT NULL DEFAULT 0,
	waitlist_joined BIGINT NOT NULL DEFAULT 0,
	waitlist_left BIGINT NOT NULL DEFAULT 0,
	paid_registrations BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uq_wh_event_minute ON warehouse.event_minute
	(tenant_id, event_id, ticket_type_id, bucket) NULLS NOT DISTINCT;
CREATE INDEX ix_wh_event_minute_event ON warehouse.event_minute (tenant_id, event_id, bucket);
CREATE INDEX ix_wh_event_minute_tenant ON warehouse.event_minute (tenant_id, bucket);

-- Money per currency (minor units): gross = payments, refunds, net = gross - refunds; gross split
-- by purpose (full, deposit, remainder).
CREATE TABLE warehouse.revenue_minute (
	tenant_id UUID NOT NULL,
	event_id UUID NOT NULL,
	ticket_type_id UUID,
	currency VARCHAR(3) NOT NULL,
	bucket TIMESTAMP WITH TIME ZONE NOT NULL,
	payment_count BIGINT NOT NULL DEFAULT 0,
	refund_count BIGINT NOT NULL DEFAULT 0,
	gross BIGINT NOT NULL DEFAULT 0,
	refunds BIGINT NOT NULL DEFAULT 0,
	net BIGINT NOT NULL DEFAULT 0,
	full_amount BIGINT NOT NULL DEFAULT 0,
	deposit_amount BIGINT NOT NULL DEFAULT 0,
	remainder_amount BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uq_wh_revenue_minute ON warehouse.revenue_minute
	(tenant_id, event_id, ticket_type_id, currency, bucket) NULLS NOT DISTINCT;
CREATE INDEX ix_wh_revenue_minute_event ON warehouse.revenue_minute (tenant_id, event_id, bucket);
CREATE INDEX ix_wh_revenue_minute_tenant ON warehouse.revenue_minute (tenant_id, bucket);

-- Tracked traffic per source and device class.
CREATE TABLE warehouse.traffic_minute (
	tenant_id UUID NOT NULL,
	event_id UUID NOT NULL,
	source VARCHAR(128) NOT NULL,
	device VARCHAR(16) NOT NULL,
	bucket TIMESTAMP WITH TIME ZONE NOT NULL,
	views BIGINT NOT NULL DEFAULT 0,
	unique_views BIGINT NOT NULL DEFAULT 0,
	ticket_selected BIGINT NOT NULL DEFAULT 0,
	checkout_started BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uq_wh_traffic_minute ON warehouse.traffic_minute
	(tenant_id, event_id, source, device, bucket);
CREATE INDEX ix_wh_traffic_minute_event ON warehouse.traffic_minute (tenant_id, event_id, bucket);
