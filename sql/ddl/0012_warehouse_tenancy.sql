-- 0012: the warehouse's tenancy, the same on both flavours (no row level security: TimescaleDB
-- refuses it on hypertables with continuous aggregates or a columnstore).
--
-- The application role (__APP__) has no privilege in the warehouse schema at all: not on a
-- table, an aggregate, a function, nor the schema itself. It reads the `analytics` schema: one
-- security-barrier view per rollup and grain, each returning the rows of the transaction's
-- tenant (app_tenant_id(), set by the unit of work from the verified token) and nothing else.
-- The views belong to the owner, so they read the warehouse with the owner's rights; the
-- security barrier keeps a caller's own conditions from being evaluated before the tenant's.
-- The warehouse's writers (the worker's sink, backfill, reconcile, partition upkeep) connect as
-- the owner and switch to the warehouse role (__WAREHOUSE__), which may read and write the
-- warehouse's tables and call its functions, and has no privilege elsewhere but app_tenant_id().

REVOKE ALL ON ALL TABLES IN SCHEMA warehouse FROM __APP__;
REVOKE UPDATE (is_unique) ON warehouse.facts FROM __APP__;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA warehouse FROM __APP__;
REVOKE ALL ON SCHEMA warehouse FROM __APP__;

GRANT USAGE ON SCHEMA warehouse TO __WAREHOUSE__;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA warehouse TO __WAREHOUSE__;
GRANT EXECUTE ON FUNCTION warehouse.flavor(), warehouse.create_partitions(date, int)
	TO __WAREHOUSE__;
GRANT USAGE ON SCHEMA public TO __WAREHOUSE__;

CREATE SCHEMA analytics;
REVOKE ALL ON SCHEMA analytics FROM PUBLIC;
GRANT USAGE ON SCHEMA analytics TO __APP__;

CREATE VIEW analytics.event_minute WITH (security_barrier) AS
	SELECT * FROM warehouse.event_minute WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.event_hour WITH (security_barrier) AS
	SELECT * FROM warehouse.event_hour WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.event_day WITH (security_barrier) AS
	SELECT * FROM warehouse.event_day WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.revenue_minute WITH (security_barrier) AS
	SELECT * FROM warehouse.revenue_minute WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.revenue_hour WITH (security_barrier) AS
	SELECT * FROM warehouse.revenue_hour WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.revenue_day WITH (security_barrier) AS
	SELECT * FROM warehouse.revenue_day WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.traffic_minute WITH (security_barrier) AS
	SELECT * FROM warehouse.traffic_minute WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.traffic_hour WITH (security_barrier) AS
	SELECT * FROM warehouse.traffic_hour WHERE tenant_id = app_tenant_id();
CREATE VIEW analytics.traffic_day WITH (security_barrier) AS
	SELECT * FROM warehouse.traffic_day WHERE tenant_id = app_tenant_id();

GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO __APP__;
