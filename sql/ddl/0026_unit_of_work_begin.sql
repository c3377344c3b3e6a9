-- 0026: a unit of work's first statement, one round trip (domain/uow.py). It sets the
-- transaction's context as the three set_config(..., is_local => true) calls did (0003's app_*
-- functions read it), and, when asked, answers the caller's account row the API checks on every
-- signed-in request (deleted? token revoked by a password change?), read under that context, so
-- the users policy lets it see its own row and nothing else. A platform admin's account (not
-- deleted) switches app.platform_admin on, as the API did after reading the row. SECURITY
-- INVOKER: it can do nothing the caller could not do with set_config itself. No SET clause: a
-- function's SET would confine the settings to the call. Plain PostgreSQL.
CREATE FUNCTION app_begin(p_user uuid, p_tenant uuid, p_admin boolean, p_account boolean)
RETURNS TABLE (platform_admin boolean, deleted_at timestamptz, token_version integer)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('app.user_id', coalesce(p_user::text, ''), true),
            set_config('app.tenant_id', coalesce(p_tenant::text, ''), true),
            set_config('app.platform_admin', CASE WHEN p_admin THEN 'on' ELSE '' END, true);
    IF NOT p_account OR p_user IS NULL THEN
        RETURN;
    END IF;
    SELECT u.is_platform_admin, u.deleted_at, u.token_version
      INTO platform_admin, deleted_at, token_version
      FROM users u WHERE u.id = p_user;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF platform_admin AND deleted_at IS NULL THEN
        PERFORM set_config('app.platform_admin', 'on', true);
    END IF;
    RETURN NEXT;
END
$$;
