-- 0010: page views carry their uniqueness (is_unique: the same visitor had no page view of the
-- event in the 30 minutes before; ties by fact id), kept by the sink and by backfill, so that a
-- minute's unique views are counted, not probed view by view each time the minute is
-- recomputed. NULL on other kinds. The application role may update this column only.

ALTER TABLE warehouse.facts ADD COLUMN is_unique BOOLEAN;
GRANT UPDATE (is_unique) ON warehouse.facts TO __APP__;

UPDATE warehouse.facts f SET is_unique = w.u
FROM (
	SELECT tenant_id, fact_id, occurred_at,
		CASE WHEN visitor_id IS NULL THEN true
		     ELSE coalesce(lag(occurred_at) OVER (PARTITION BY tenant_id, event_id, visitor_id
		                                          ORDER BY occurred_at, fact_id)
		                   < occurred_at - interval '30 minutes', true) END AS u
	FROM warehouse.facts WHERE kind = 'page_view'
) w
WHERE f.tenant_id = w.tenant_id AND f.fact_id = w.fact_id AND f.occurred_at = w.occurred_at;
