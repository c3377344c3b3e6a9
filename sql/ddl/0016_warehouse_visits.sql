-- 0016: visits kept by the sink (docs/analytics.md, "Funnel and attribution"), the same on both
-- flavours. The dashboard, the report and the funnel export read one row per visit (and one per
-- registration, payment or check-in credited to it) instead of every fact of the range
-- (docs/benchmarks.md, "(c)"). Both tables are plain tables, not hypertables: no row level
-- security, no continuous aggregate, no columnstore is involved. The sink recomputes the rows of
-- every (event, visitor) its batch touches from warehouse.facts (warehouse/visits.py); backfill
-- and reconcile recompute whole events; this migration fills them from the facts.

-- One row per visit: a unique page view (facts.is_unique), its visitor, start and first-touch
-- source, and the first time an action credited to it (the visitor's latest visit started at or
-- before the action, within 24 hours) reached each tracked stage.
CREATE TABLE warehouse.visits (
	tenant_id UUID NOT NULL,
	event_id UUID NOT NULL,
	fact_id UUID NOT NULL,
	visitor_id VARCHAR(128),
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	source VARCHAR(128) NOT NULL,
	device VARCHAR(16),
	ticket_selected_at TIMESTAMP WITH TIME ZONE,
	checkout_started_at TIMESTAMP WITH TIME ZONE,
	reservation_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_wh_visits PRIMARY KEY (tenant_id, event_id, fact_id)
);
CREATE INDEX ix_wh_visits_event_start ON warehouse.visits (tenant_id, event_id, started_at);
CREATE INDEX ix_wh_visits_start ON warehouse.visits (tenant_id, started_at);
CREATE INDEX ix_wh_visits_visitor ON warehouse.visits (tenant_id, event_id, visitor_id, started_at);

-- One row per registration (visit_started_at NULL: credited to no visit), and per payment and
-- check-in of a credited registration, with the registration's time: a range counts a credit
-- when it and its registration lie in the range (stage 4 registration, 5 payment in full or
-- deposit, 6 check-in, 0 another payment: revenue only).
CREATE TABLE warehouse.visit_credits (
	tenant_id UUID NOT NULL,
	event_id UUID NOT NULL,
	fact_id UUID NOT NULL,
	kind VARCHAR(32) NOT NULL,
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
	registration_id UUID,
	registered_at TIMESTAMP WITH TIME ZONE NOT NULL,
	visitor_id VARCHAR(128),
	visit_started_at TIMESTAMP WITH TIME ZONE,
	stage SMALLINT NOT NULL,
	amount BIGINT NOT NULL DEFAULT 0,
	currency VARCHAR(3)
);
CREATE UNIQUE INDEX uq_wh_visit_credits ON warehouse.visit_credits
	(tenant_id, event_id, fact_id, visit_started_at) NULLS NOT DISTINCT;
CREATE INDEX ix_wh_visit_credits_visit ON warehouse.visit_credits
	(tenant_id, event_id, visit_started_at);
CREATE INDEX ix_wh_visit_credits_time ON warehouse.visit_credits (tenant_id, occurred_at)
	WHERE kind = 'registration';
CREATE INDEX ix_wh_visit_credits_visitor ON warehouse.visit_credits
	(tenant_id, event_id, visitor_id);

-- The sink's lookups in the facts (partial: only the rows they can match are indexed, so page
-- views, the bulk of the facts, cost these indexes nothing). On TimescaleDB a plain CREATE INDEX
-- on the hypertable makes it on every chunk, "the same as on regular PostgreSQL tables"; only a
-- UNIQUE index must hold the partitioning column (docs: use-timescale/latest/schema-management/
-- indexing, learn/hypertables/hypertable-indexes). These are not unique, hold occurred_at all
-- the same, and are partial like ix_wh_facts_visitor_views (0008, 0011) on the same hypertable.
CREATE INDEX ix_wh_facts_visitor_actions ON warehouse.facts
	(tenant_id, event_id, visitor_id, occurred_at)
	WHERE visitor_id IS NOT NULL
	AND kind IN ('ticket_selected', 'checkout_started', 'reservation', 'registration');
CREATE INDEX ix_wh_facts_registration ON warehouse.facts
	(tenant_id, event_id, registration_id, occurred_at)
	WHERE kind IN ('registration', 'payment', 'checkin');

GRANT SELECT, INSERT, UPDATE, DELETE ON warehouse.visits, warehouse.visit_credits TO __WAREHOUSE__;

-- The application role reads them through tenant-filtering security-barrier views (0012).
CREATE VIEW analytics.visits WITH (security_barrier) AS
	SELECT * FROM warehouse.visits WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.visit_credits WITH (security_barrier) AS
	SELECT * FROM warehouse.visit_credits WHERE tenant_id = app_tenant_id();
GRANT SELECT ON analytics.visits, analytics.visit_credits TO __APP__;

-- Fill them from the facts of every tenant: warehouse.visits.RECOMPUTE_ALL at this revision
-- (tests/warehouse/test_visits.py checks it equals what the sink keeps).
WITH f AS MATERIALIZED (SELECT tenant_id, event_id, fact_id, occurred_at, kind, visitor_id, registration_id, coalesce(source, 'direct') AS source, device FROM warehouse.facts WHERE true AND ((kind = 'page_view' AND is_unique) OR kind IN ('ticket_selected', 'checkout_started', 'reservation', 'registration'))
), stream AS (
  SELECT *, max(CASE WHEN kind = 'page_view' THEN occurred_at END) OVER (
      PARTITION BY tenant_id, event_id, visitor_id
      ORDER BY occurred_at, kind = 'page_view' DESC, fact_id ROWS UNBOUNDED PRECEDING) AS visit_at
  FROM f
), credited AS (
  SELECT * FROM stream
  WHERE kind <> 'page_view' AND visitor_id IS NOT NULL AND visit_at IS NOT NULL
    AND occurred_at < visit_at + interval '86400 seconds'
), reached AS (
  SELECT tenant_id, event_id, visitor_id, visit_at,
    min(occurred_at) FILTER (WHERE kind = 'ticket_selected') AS ticket_selected_at,
    min(occurred_at) FILTER (WHERE kind = 'checkout_started') AS checkout_started_at,
    min(occurred_at) FILTER (WHERE kind = 'reservation') AS reservation_at
  FROM credited GROUP BY tenant_id, event_id, visitor_id, visit_at
), visits AS (
  INSERT INTO warehouse.visits (tenant_id, event_id, fact_id, visitor_id, started_at, source,
    device, ticket_selected_at, checkout_started_at, reservation_at)
  SELECT v.tenant_id, v.event_id, v.fact_id, v.visitor_id, v.occurred_at, v.source, v.device,
    r.ticket_selected_at, r.checkout_started_at, r.reservation_at
  FROM stream v LEFT JOIN reached r ON r.tenant_id = v.tenant_id AND r.event_id = v.event_id
    AND r.visitor_id = v.visitor_id AND r.visit_at = v.occurred_at
  WHERE v.kind = 'page_view'
  ON CONFLICT DO NOTHING RETURNING 1
), registrations AS (
  SELECT s.tenant_id, s.event_id, s.fact_id, s.occurred_at, s.registration_id, s.visitor_id,
    c.visit_at
  FROM stream s LEFT JOIN credited c ON c.tenant_id = s.tenant_id AND c.fact_id = s.fact_id
    AND c.occurred_at = s.occurred_at
  WHERE s.kind = 'registration'
), credits AS (
  INSERT INTO warehouse.visit_credits (tenant_id, event_id, fact_id, kind, occurred_at,
    registration_id, registered_at, visitor_id, visit_started_at, stage, amount, currency)
  SELECT tenant_id, event_id, fact_id, 'registration', occurred_at, registration_id, occurred_at,
    visitor_id, visit_at, 4, 0, NULL
  FROM registrations r LEFT JOIN LATERAL (SELECT true AS kept FROM warehouse.visit_credits o
    WHERE o.tenant_id = r.tenant_id AND o.event_id = r.event_id AND o.fact_id = r.fact_id
    LIMIT 1) o ON r.visit_at IS NULL
  WHERE o.kept IS NULL
  UNION ALL
  SELECT r.tenant_id, r.event_id, p.fact_id, p.kind, p.occurred_at, r.registration_id,
    r.occurred_at, r.visitor_id, r.visit_at,
    CASE WHEN p.kind = 'checkin' THEN 6 WHEN p.purpose IN ('full', 'deposit') THEN 5 ELSE 0 END,
    p.amount, p.currency
  FROM registrations r CROSS JOIN LATERAL (SELECT * FROM warehouse.facts
    WHERE tenant_id = r.tenant_id AND event_id = r.event_id
    AND registration_id = r.registration_id AND kind IN ('payment', 'checkin') OFFSET 0) p
  WHERE r.visit_at IS NOT NULL
  ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM visits), (SELECT count(*) FROM credits);
