-- 0019: who organizes an event, for everyone. An organization's public profile (name, address
-- name, description, logo) is read past the members-only policy on organizations by these
-- SECURITY DEFINER functions, which answer only those fields (never members, groups, requests).

CREATE FUNCTION organizer_profiles(p_ids uuid[])
RETURNS TABLE (id uuid, name text, slug text, description text, logo_media_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id, o.name::text, o.slug::text, o.description::text,
           CASE WHEN m.id IS NOT NULL THEN o.logo_media_id END
    FROM organizations o
    LEFT JOIN media m ON m.id = o.logo_media_id AND m.deleted_at IS NULL
    WHERE o.id = ANY(p_ids) AND o.deleted_at IS NULL
$$;

CREATE FUNCTION organizer_by_slug(p_slug text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id FROM organizations o WHERE o.slug = p_slug AND o.deleted_at IS NULL
$$;

-- The logo's stored variant, for the public profile: the object's key and type only.
CREATE FUNCTION organizer_logo_variant(p_org uuid, p_variant text)
RETURNS TABLE (storage_key text, content_type text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT v.storage_key::text, v.content_type::text
    FROM organizations o
    JOIN media m ON m.id = o.logo_media_id AND m.deleted_at IS NULL
    JOIN media_variants v ON v.media_id = m.id AND v.name = p_variant
    WHERE o.id = p_org AND o.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION organizer_profiles(uuid[]), organizer_by_slug(text),
    organizer_logo_variant(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION organizer_profiles(uuid[]), organizer_by_slug(text),
    organizer_logo_variant(uuid, text) TO __APP__;
