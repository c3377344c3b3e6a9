-- 0007: uploaded files (media) and their stored variants; event covers and organization logos
-- point at them; row level security; the functions the cleanup job and public covers use.

CREATE TYPE media_purpose AS ENUM ('event_cover', 'organization_logo', 'attachment');

CREATE TABLE media (
	tenant_id UUID NOT NULL,
	purpose media_purpose NOT NULL,
	content_type VARCHAR(100) NOT NULL,
	size_bytes BIGINT NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	filename VARCHAR(255),
	width INTEGER,
	height INTEGER,
	uploaded_by UUID NOT NULL,
	deleted_at TIMESTAMP WITH TIME ZONE,
	purged_at TIMESTAMP WITH TIME ZONE,
	id UUID NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
	CONSTRAINT pk_media PRIMARY KEY (id),
	CONSTRAINT uq_media_tenant_id_id UNIQUE (tenant_id, id),
	CONSTRAINT ck_media_size_positive CHECK (size_bytes > 0),
	CONSTRAINT ck_media_purged_is_deleted CHECK (purged_at IS NULL OR deleted_at IS NOT NULL),
	CONSTRAINT fk_media_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id),
	CONSTRAINT fk_media_uploaded_by_users FOREIGN KEY(uploaded_by) REFERENCES users (id)
);
CREATE INDEX ix_media_cleanup ON media (created_at) WHERE purged_at IS NULL;

CREATE TABLE media_variants (
	tenant_id UUID NOT NULL,
	media_id UUID NOT NULL,
	name VARCHAR(32) NOT NULL,
	content_type VARCHAR(100) NOT NULL,
	storage_key VARCHAR(300) NOT NULL,
	size_bytes BIGINT NOT NULL,
	width INTEGER,
	height INTEGER,
	id UUID NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
	CONSTRAINT pk_media_variants PRIMARY KEY (id),
	CONSTRAINT fk_media_variants_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id),
	CONSTRAINT fk_media_variants_media_id_media FOREIGN KEY(media_id) REFERENCES media (id)
);
CREATE UNIQUE INDEX uq_media_variants_media_id_name ON media_variants (media_id, name);

-- A cover or logo is media of the same tenant: the composite keys make the database say so.
ALTER TABLE events ADD COLUMN cover_media_id UUID;
ALTER TABLE events ADD CONSTRAINT fk_events_tenant_id_cover_media_id_media
	FOREIGN KEY(tenant_id, cover_media_id) REFERENCES media (tenant_id, id);
CREATE INDEX ix_events_cover_media_id ON events (cover_media_id) WHERE cover_media_id IS NOT NULL;

ALTER TABLE organizations ADD COLUMN logo_media_id UUID;
ALTER TABLE organizations ADD CONSTRAINT fk_organizations_id_logo_media_id_media
	FOREIGN KEY(id, logo_media_id) REFERENCES media (tenant_id, id);
CREATE INDEX ix_organizations_logo_media_id ON organizations (logo_media_id)
	WHERE logo_media_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE ON media, media_variants TO __APP__;

ALTER TABLE media ENABLE ROW LEVEL SECURITY;
CREATE POLICY media_tenant ON media
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
ALTER TABLE media_variants ENABLE ROW LEVEL SECURITY;
CREATE POLICY media_variants_tenant ON media_variants
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

-- Media the cleanup job should look at: deleted and not yet purged, or older than the cutoff and
-- referenced by no live event or organization. Ids only; each is re-checked under RLS.
CREATE FUNCTION media_due_for_cleanup(p_cutoff timestamptz, p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.id, m.tenant_id FROM media m
    WHERE m.purged_at IS NULL
      AND (m.deleted_at IS NOT NULL
           OR (m.created_at < p_cutoff
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.cover_media_id = m.id AND e.deleted_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM organizations o
                               WHERE o.logo_media_id = m.id AND o.deleted_at IS NULL)))
    ORDER BY m.created_at LIMIT p_limit
$$;

-- The cover of an event, for whoever may see the event (anonymous visitors of public events
-- included, who see no media rows): only the object's key and type leave.
CREATE FUNCTION event_cover_variant(p_event uuid, p_variant text)
RETURNS TABLE (storage_key text, content_type text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT v.storage_key::text, v.content_type::text
    FROM events e
    JOIN media m ON m.id = e.cover_media_id AND m.deleted_at IS NULL
    JOIN media_variants v ON v.media_id = m.id AND v.name = p_variant
    WHERE e.id = p_event AND app_can_see_event(p_event)
$$;

REVOKE ALL ON FUNCTION media_due_for_cleanup(timestamptz, int), event_cover_variant(uuid, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION media_due_for_cleanup(timestamptz, int), event_cover_variant(uuid, text)
    TO __APP__;
