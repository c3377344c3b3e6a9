-- 0015: first-touch attribution and a funnel of visits (docs/analytics.md, "Funnel and
-- attribution"). The same on both flavours: no table of the warehouse changes, nothing is
-- added to a hypertable, a continuous aggregate or a columnstore (TimescaleDB), and no row level
-- security is involved.
--
-- 1. Holds and registrations remember the tracking visitor they were made by (the visitor id the
--    page's tracking sends with POST /analytics/track, given again with the hold or the
--    registration: docs/tracking.md, "Registrations and their visitor"). Their events carry it to
--    the warehouse's facts (warehouse.facts.visitor_id, which tracked actions already fill), and
--    `aqstream warehouse reconcile` re-derives it from these columns.
ALTER TABLE reservations ADD COLUMN visitor_id VARCHAR(64);
ALTER TABLE registrations ADD COLUMN visitor_id VARCHAR(64);

-- 2. The application role reads the facts the funnel and attribution need through a
--    tenant-filtering security-barrier view, like every rollup (0012): visits (unique page
--    views: is_unique) and every fact that is not a page view. Counting distinct visits that
--    reached a stage cannot be added up from buckets, so the API computes it from these rows
--    for the range asked (warehouse/queries.py, `journeys`), through ix_wh_facts_event_time.
CREATE VIEW analytics.facts WITH (security_barrier) AS
	SELECT tenant_id, event_id, fact_id, occurred_at, kind, ticket_type_id, registration_id,
		quantity, amount, currency, purpose, visitor_id, source, device, is_unique
	FROM warehouse.facts
	WHERE tenant_id = app_tenant_id() AND is_unique IS NOT FALSE;
GRANT SELECT ON analytics.facts TO __APP__;
