-- 0009: export jobs (an organization's data as a CSV, Parquet or XLSX file in S3); row level
-- security; the functions the export runner finds its work with, across tenants.

CREATE TYPE export_dataset AS ENUM ('registrations', 'payments', 'attendance', 'funnel', 'traffic');
CREATE TYPE export_format AS ENUM ('csv', 'parquet', 'xlsx');
CREATE TYPE export_status AS ENUM ('queued', 'running', 'succeeded', 'failed');

CREATE TABLE exports (
	tenant_id UUID NOT NULL, 
	requested_by UUID NOT NULL, 
	dataset export_dataset NOT NULL, 
	format export_format NOT NULL, 
	event_id UUID, 
	range_from TIMESTAMP WITH TIME ZONE, 
	range_to TIMESTAMP WITH TIME ZONE, 
	personal_data BOOLEAN NOT NULL, 
	status export_status DEFAULT 'queued' NOT NULL, 
	progress SMALLINT DEFAULT 0 NOT NULL, 
	rows BIGINT, 
	file_name VARCHAR(300) NOT NULL, 
	storage_key VARCHAR(600), 
	size_bytes BIGINT, 
	error TEXT, 
	attempts SMALLINT DEFAULT 0 NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	heartbeat_at TIMESTAMP WITH TIME ZONE, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_exports PRIMARY KEY (id), 
	CONSTRAINT ck_exports_progress_range CHECK (progress BETWEEN 0 AND 100), 
	CONSTRAINT ck_exports_range_order CHECK (range_from IS NULL OR range_to IS NULL OR range_from < range_to), 
	CONSTRAINT ck_exports_finished CHECK (status NOT IN ('succeeded', 'failed') OR finished_at IS NOT NULL), 
	CONSTRAINT ck_exports_failure_explained CHECK (status <> 'failed' OR error IS NOT NULL), 
	CONSTRAINT fk_exports_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_exports_requested_by_users FOREIGN KEY(requested_by) REFERENCES users (id), 
	CONSTRAINT fk_exports_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
);
CREATE INDEX ix_exports_active ON exports (status, created_at) WHERE status IN ('queued', 'running');
CREATE INDEX ix_exports_tenant_id_created_at ON exports (tenant_id, created_at);

-- No DELETE: an export is a record of data that left the platform.
GRANT SELECT, INSERT, UPDATE ON exports TO __APP__;

ALTER TABLE exports ENABLE ROW LEVEL SECURITY;
CREATE POLICY exports_tenant ON exports
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

-- Work for the export runner, across tenants: only ids, each then claimed (FOR UPDATE SKIP
-- LOCKED) and run in its own tenant's context.
CREATE FUNCTION exports_queued(p_limit int) RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT x.id, x.tenant_id FROM exports x
    WHERE x.status = 'queued' ORDER BY x.created_at LIMIT p_limit
$$;

-- Exports a runner took and stopped reporting on (the process died): their heartbeat is older
-- than p_cutoff.
CREATE FUNCTION exports_stale(p_cutoff timestamptz, p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT x.id, x.tenant_id FROM exports x
    WHERE x.status = 'running' AND coalesce(x.heartbeat_at, x.started_at, x.created_at) < p_cutoff
    ORDER BY x.created_at LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION exports_queued(int), exports_stale(timestamptz, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exports_queued(int), exports_stale(timestamptz, int) TO __APP__;
