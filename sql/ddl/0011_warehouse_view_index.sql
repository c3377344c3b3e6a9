-- 0011: the index the sink's uniqueness probes read (rollups.NEW_VIEW_UNIQUE, LATER_UNIQUE_VIEWS)
-- now holds every column they test: fact_id (the tie-break of two views at one instant) as a key
-- column and is_unique as a payload, so all of a probe's conditions are index conditions on it.
--
-- Why: the sink runs cached generic plans. With the old index (tenant_id, event_id, visitor_id,
-- occurred_at), a plan built while a partition's statistics did not describe it yet (a new
-- partition, new tenants, a burst faster than autovacuum's analyze) could take the primary key
-- (tenant_id, fact_id, occurred_at) instead: every probe then read all of the tenant's facts in
-- the batch's time span, and batches of 5,000 facts took 3-7 s instead of 0.2-0.3 s until the
-- next analyze. Measured on eight rounds of live batches with new tenants in each: five rounds
-- collapsed so with the old index, none with this one (docs/benchmarks.md, "Analytics").

DROP INDEX warehouse.ix_wh_facts_visitor_views;
CREATE INDEX ix_wh_facts_visitor_views ON warehouse.facts
	(tenant_id, event_id, visitor_id, occurred_at, fact_id) INCLUDE (is_unique)
	WHERE kind = 'page_view';
