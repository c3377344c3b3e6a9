-- 0008, plain PostgreSQL flavour: raw facts in native monthly RANGE partitions on occurred_at
-- (a default partition takes what no month covers, so no fact is ever refused), and hour/day
-- rollup tables with the minute tables' columns, kept by the sink (warehouse/sink.py).

CREATE FUNCTION warehouse.flavor() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT 'postgres' $$;

CREATE TABLE warehouse.facts_default PARTITION OF warehouse.facts DEFAULT;

-- Monthly partitions [p_from, p_from + p_months months), UTC months. Facts of a month that had
-- gone to the default partition move into the new partition (PostgreSQL refuses to create a
-- partition whose rows sit in the default one). Idempotent; runs as the owner.
CREATE FUNCTION warehouse.create_partitions(p_from date, p_months int) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = warehouse, public, pg_temp AS $$
DECLARE
	month date;
	lo timestamptz;
	hi timestamptz;
	name text;
	created int := 0;
BEGIN
	FOR i IN 0 .. p_months - 1 LOOP
		month := (date_trunc('month', p_from::timestamp) + make_interval(months => i))::date;
		name := format('facts_y%sm%s', to_char(month, 'YYYY'), to_char(month, 'MM'));
		CONTINUE WHEN to_regclass('warehouse.' || name) IS NOT NULL;
		lo := month::timestamp AT TIME ZONE 'UTC';
		hi := (month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
		CREATE TEMP TABLE moving_facts ON COMMIT DROP AS
			WITH moved AS (DELETE FROM warehouse.facts_default
			               WHERE occurred_at >= lo AND occurred_at < hi RETURNING *)
			SELECT * FROM moved;
		EXECUTE format('CREATE TABLE warehouse.%I PARTITION OF warehouse.facts FOR VALUES FROM (%L) TO (%L)',
		               name, lo, hi);
		INSERT INTO warehouse.facts SELECT * FROM moving_facts;
		DROP TABLE moving_facts;
		created := created + 1;
	END LOOP;
	RETURN created;
END $$;
REVOKE ALL ON FUNCTION warehouse.create_partitions(date, int) FROM PUBLIC;

-- A year back (imported history) and a year ahead.
SELECT warehouse.create_partitions(
	(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '12 months')::date, 25);

CREATE TABLE warehouse.event_hour (LIKE warehouse.event_minute INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE warehouse.event_day (LIKE warehouse.event_minute INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE warehouse.revenue_hour (LIKE warehouse.revenue_minute INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE warehouse.revenue_day (LIKE warehouse.revenue_minute INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE warehouse.traffic_hour (LIKE warehouse.traffic_minute INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE warehouse.traffic_day (LIKE warehouse.traffic_minute INCLUDING DEFAULTS INCLUDING INDEXES);
