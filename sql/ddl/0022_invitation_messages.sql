-- 0022: invitations are delivered also to whom has no account yet, and by Telegram to a linked
-- account named by its username. Plain PostgreSQL.

-- A message to an address without an account (an e-mail invitation): no recipient user. Such a
-- row is always a tenant's (platform messages belong to their recipient), and is unique per
-- source, address and channel as the others are per source, recipient and channel.
ALTER TABLE notifications ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE notifications ADD CONSTRAINT ck_notifications_recipient
    CHECK (user_id IS NOT NULL OR tenant_id IS NOT NULL);
CREATE UNIQUE INDEX uq_notifications_source_address_channel
    ON notifications (source_event_id, address, channel) WHERE user_id IS NULL;

-- The account an invitation of the caller's tenant is addressed to (its id only): the account
-- with the invited e-mail address, or the Telegram-linked account with the invited username.
-- The worker acts as that account next (its row, language and preferences are its own).
CREATE FUNCTION invitee_account(p_invite uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id FROM organization_invites i
    JOIN users u ON u.deleted_at IS NULL
        AND ((i.email IS NOT NULL AND u.email = i.email)
             OR (i.telegram_username IS NOT NULL AND u.telegram_id IS NOT NULL
                 AND lower(u.telegram_username) = i.telegram_username))
    WHERE i.id = p_invite AND i.tenant_id = app_tenant_id()
    LIMIT 1
$$;
REVOKE ALL ON FUNCTION invitee_account(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invitee_account(uuid) TO __APP__;
