-- 0020: unpublishing an event does not hide it from the people registered for it. A participant
-- with a live registration (pending payment or confirmed) still reads the event, its ticket types
-- (their policy reads events under RLS) and may act on their own registration (the write checks
-- call app_can_see_event), whatever the event's state. Plain PostgreSQL.

-- SECURITY DEFINER: read from the events policy, it must not go through the registrations'
-- policies (which call app_can_see_event, which reads events: a recursion otherwise).
CREATE FUNCTION app_registered_for(p_event uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT app_user_id() IS NOT NULL AND EXISTS (
        SELECT 1 FROM registrations r
        WHERE r.event_id = p_event AND r.user_id = app_user_id() AND r.status <> 'cancelled'
    )
$$;
REVOKE ALL ON FUNCTION app_registered_for(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_registered_for(uuid) TO __APP__;

CREATE OR REPLACE FUNCTION app_can_see_event(p_event uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM events e
        WHERE e.id = p_event AND e.deleted_at IS NULL
          AND (e.tenant_id = app_tenant_id()
               OR (e.status <> 'draft'
                   AND (e.visibility = 'public'
                        OR e.group_id IN (SELECT gm.group_id FROM group_members gm
                                          WHERE gm.user_id = app_user_id()
                                            AND gm.deleted_at IS NULL)))
               OR app_registered_for(e.id))
    )
$$;

DROP POLICY events_visible ON events;
CREATE POLICY events_visible ON events FOR SELECT USING (
    deleted_at IS NULL
    AND ((status <> 'draft'
          AND (visibility = 'public'
               OR group_id IN (SELECT gm.group_id FROM group_members gm
                               WHERE gm.user_id = app_user_id() AND gm.deleted_at IS NULL)))
         OR app_registered_for(id))
);

-- A private event's publication is announced to its group's members: the tenant reads their
-- notification preferences (channel, quiet hours) as it reads its participants'.
DROP POLICY notification_preferences_participants ON notification_preferences;
CREATE POLICY notification_preferences_participants ON notification_preferences FOR SELECT USING (
    user_id IN (SELECT r.user_id FROM registrations r WHERE r.tenant_id = app_tenant_id())
    OR user_id IN (SELECT w.user_id FROM waitlist_entries w WHERE w.tenant_id = app_tenant_id())
    OR user_id IN (SELECT gm.user_id FROM group_members gm
                   WHERE gm.tenant_id = app_tenant_id() AND gm.deleted_at IS NULL)
);
