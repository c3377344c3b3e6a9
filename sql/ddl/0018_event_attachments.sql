-- 0018: documents an event carries (programme, rules): uploaded attachments, kept alive by the
-- event that lists them and downloadable by whoever may see the event.

CREATE TABLE event_attachments (
	tenant_id UUID NOT NULL,
	event_id UUID NOT NULL,
	media_id UUID NOT NULL,
	title VARCHAR(200) NOT NULL,
	position INTEGER DEFAULT 0 NOT NULL,
	created_by UUID NOT NULL,
	deleted_at TIMESTAMP WITH TIME ZONE,
	deleted_by UUID,
	id UUID NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
	CONSTRAINT pk_event_attachments PRIMARY KEY (id),
	CONSTRAINT ck_event_attachments_title_not_blank CHECK (btrim(title) <> ''),
	CONSTRAINT ck_event_attachments_position_range CHECK (position BETWEEN 0 AND 1000),
	CONSTRAINT fk_event_attachments_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id),
	CONSTRAINT fk_event_attachments_event_id_events FOREIGN KEY(event_id) REFERENCES events (id),
	-- An attachment is media of the event's own tenant: the composite key makes the database say so.
	CONSTRAINT fk_event_attachments_tenant_id_media_id_media FOREIGN KEY(tenant_id, media_id) REFERENCES media (tenant_id, id),
	CONSTRAINT fk_event_attachments_created_by_users FOREIGN KEY(created_by) REFERENCES users (id),
	CONSTRAINT fk_event_attachments_deleted_by_users FOREIGN KEY(deleted_by) REFERENCES users (id)
);
-- Removing is a soft delete, as everywhere (no DELETE is granted): an event lists a file once.
CREATE UNIQUE INDEX uq_event_attachments_event_id_media_id ON event_attachments (event_id, media_id)
	WHERE deleted_at IS NULL;
CREATE INDEX ix_event_attachments_media_id ON event_attachments (media_id) WHERE deleted_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON event_attachments TO __APP__;
ALTER TABLE event_attachments ENABLE ROW LEVEL SECURITY;
CREATE POLICY event_attachments_tenant ON event_attachments
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

-- The event's attachments, for whoever may see the event (anonymous visitors of a published
-- public event, members of a private event's group, the organization): what a download list
-- shows, never a storage key.
CREATE FUNCTION event_attachments_of(p_event uuid)
RETURNS TABLE (id uuid, title text, "position" int, content_type text, size_bytes bigint,
               filename text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.id, a.title::text, a.position, m.content_type::text, m.size_bytes, m.filename::text,
           a.created_at
    FROM event_attachments a
    JOIN media m ON m.id = a.media_id AND m.deleted_at IS NULL
    WHERE a.event_id = p_event AND a.deleted_at IS NULL AND app_can_see_event(p_event)
    ORDER BY a.position, a.created_at, a.id
$$;

-- One attachment's stored file, for the same readers: the object's key, type and names only.
CREATE FUNCTION event_attachment_object(p_event uuid, p_attachment uuid)
RETURNS TABLE (storage_key text, content_type text, filename text, title text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT v.storage_key::text, v.content_type::text, m.filename::text, a.title::text
    FROM event_attachments a
    JOIN media m ON m.id = a.media_id AND m.deleted_at IS NULL
    JOIN media_variants v ON v.media_id = m.id AND v.name = 'original'
    WHERE a.id = p_attachment AND a.event_id = p_event AND a.deleted_at IS NULL
      AND app_can_see_event(p_event)
$$;

-- The cleanup job spares what an event lists as an attachment, as it spares covers and logos.
CREATE OR REPLACE FUNCTION media_due_for_cleanup(p_cutoff timestamptz, p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.id, m.tenant_id FROM media m
    WHERE m.purged_at IS NULL
      AND (m.deleted_at IS NOT NULL
           OR (m.created_at < p_cutoff
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.cover_media_id = m.id AND e.deleted_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM organizations o
                               WHERE o.logo_media_id = m.id AND o.deleted_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM event_attachments a
                               JOIN events e ON e.id = a.event_id AND e.deleted_at IS NULL
                               WHERE a.media_id = m.id AND a.deleted_at IS NULL)))
    ORDER BY m.created_at LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION event_attachments_of(uuid), event_attachment_object(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION event_attachments_of(uuid), event_attachment_object(uuid, uuid) TO __APP__;
