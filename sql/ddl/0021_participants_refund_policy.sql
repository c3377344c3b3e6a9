-- 0021: who else comes (the participant list) and the refund policy of a participant's own
-- cancellation.

-- The event's refund policy for participants who cancel: a refund until
-- refund_days_before_start days before the start (null: cancelling refunds nothing), in full or
-- minus a fee, a percent of what was paid or a fixed amount (minor units of the registration's
-- currency), never both.
ALTER TABLE events
    ADD COLUMN refund_days_before_start INTEGER,
    ADD COLUMN refund_fee_percent INTEGER,
    ADD COLUMN refund_fee_amount BIGINT,
    ADD CONSTRAINT ck_events_refund_days_range
        CHECK (refund_days_before_start IS NULL OR refund_days_before_start BETWEEN 0 AND 365),
    ADD CONSTRAINT ck_events_refund_fee_range
        CHECK ((refund_fee_percent IS NULL OR refund_fee_percent BETWEEN 1 AND 99)
               AND (refund_fee_amount IS NULL OR refund_fee_amount > 0)),
    ADD CONSTRAINT ck_events_refund_one_fee
        CHECK (refund_fee_percent IS NULL OR refund_fee_amount IS NULL),
    ADD CONSTRAINT ck_events_refund_fee_needs_deadline
        CHECK (refund_days_before_start IS NOT NULL
               OR (refund_fee_percent IS NULL AND refund_fee_amount IS NULL));

-- listed: the participant shows on the event's participant list (their own choice).
-- refund_due: what the event's policy gave back when the participant cancelled (the payment
-- saga asks the provider for it); null when not cancelled by the participant.
ALTER TABLE registrations
    ADD COLUMN listed BOOLEAN DEFAULT true NOT NULL,
    ADD COLUMN refund_due BIGINT,
    ADD CONSTRAINT ck_registrations_refund_due_range
        CHECK (refund_due IS NULL OR (refund_due >= 0 AND refund_due <= amount_paid));

-- The participant list: display names only, of the listed, confirmed registrations of an event
-- whose list is open, for a caller with a confirmed registration of it who may see the event;
-- organizers (the caller entered the event's tenant) read it whatever its setting. Participants
-- cannot read other users' registrations or accounts: only these names leave, with the position
-- the next page starts after.
CREATE FUNCTION event_participants(p_event uuid, p_after uuid, p_limit int)
RETURNS TABLE (after_id uuid, display_name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, u.display_name::text
    FROM events e
    JOIN registrations r ON r.event_id = e.id
    JOIN users u ON u.id = r.user_id AND u.deleted_at IS NULL
    WHERE e.id = p_event AND e.deleted_at IS NULL
      AND r.status = 'confirmed' AND r.listed
      AND (p_after IS NULL OR r.id > p_after)
      AND (e.tenant_id = app_tenant_id()
           OR (e.participants_visibility = 'open' AND app_can_see_event(e.id)
               AND EXISTS (SELECT 1 FROM registrations me
                           WHERE me.event_id = e.id AND me.user_id = app_user_id()
                             AND me.status = 'confirmed')))
    ORDER BY r.id
    LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION event_participants(uuid, uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION event_participants(uuid, uuid, int) TO __APP__;
