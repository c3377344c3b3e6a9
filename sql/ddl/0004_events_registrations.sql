-- 0004: events, ticket types, reservations, registrations, waitlist, check-ins; the seat counters
-- and their guard functions; row level security for organizers and for participants.

CREATE TYPE event_status AS ENUM ('draft', 'published', 'cancelled', 'completed');
CREATE TYPE event_visibility AS ENUM ('public', 'private');
CREATE TYPE participants_visibility AS ENUM ('open', 'closed');
CREATE TYPE reservation_status AS ENUM ('active', 'converted', 'expired', 'cancelled');
CREATE TYPE registration_status AS ENUM ('pending_payment', 'confirmed', 'cancelled');
CREATE TYPE payment_mode AS ENUM ('free', 'full', 'deposit');
CREATE TYPE waitlist_status AS ENUM ('waiting', 'offered', 'accepted', 'expired', 'cancelled');

CREATE TABLE events (
	tenant_id UUID NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	description TEXT, 
	starts_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	ends_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	venue VARCHAR(500), 
	online_url VARCHAR(2000), 
	capacity INTEGER, 
	sold INTEGER DEFAULT 0 NOT NULL, 
	visibility event_visibility DEFAULT 'public' NOT NULL, 
	group_id UUID, 
	participants_visibility participants_visibility DEFAULT 'closed' NOT NULL, 
	registration_opens_at TIMESTAMP WITH TIME ZONE, 
	registration_closes_at TIMESTAMP WITH TIME ZONE, 
	hold_minutes INTEGER DEFAULT 15 NOT NULL, 
	status event_status DEFAULT 'draft' NOT NULL, 
	published_at TIMESTAMP WITH TIME ZONE, 
	cancelled_at TIMESTAMP WITH TIME ZONE, 
	completed_at TIMESTAMP WITH TIME ZONE, 
	created_by UUID NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_events PRIMARY KEY (id), 
	CONSTRAINT ck_events_ends_after_start CHECK (ends_at > starts_at), 
	CONSTRAINT ck_events_capacity_non_negative CHECK (capacity IS NULL OR capacity >= 0), 
	CONSTRAINT ck_events_within_capacity CHECK (sold >= 0 AND (capacity IS NULL OR sold <= capacity)), 
	CONSTRAINT ck_events_hold_minutes_range CHECK (hold_minutes BETWEEN 1 AND 1440), 
	CONSTRAINT ck_events_private_needs_group CHECK ((visibility = 'private') = (group_id IS NOT NULL)), 
	CONSTRAINT fk_events_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_events_group_id_groups FOREIGN KEY(group_id) REFERENCES groups (id), 
	CONSTRAINT fk_events_created_by_users FOREIGN KEY(created_by) REFERENCES users (id)
);
CREATE INDEX ix_events_listing ON events (starts_at, id) WHERE status = 'published' AND deleted_at IS NULL;
CREATE INDEX ix_events_tenant_id_starts_at ON events (tenant_id, starts_at);

CREATE TABLE ticket_types (
	tenant_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	description TEXT, 
	price_amount BIGINT DEFAULT 0 NOT NULL, 
	currency VARCHAR(3) DEFAULT 'EUR' NOT NULL, 
	capacity INTEGER NOT NULL, 
	sold INTEGER DEFAULT 0 NOT NULL, 
	sales_starts_at TIMESTAMP WITH TIME ZONE, 
	sales_ends_at TIMESTAMP WITH TIME ZONE, 
	max_per_order INTEGER DEFAULT 10 NOT NULL, 
	deposit_amount BIGINT, 
	deposit_percent INTEGER, 
	is_active BOOLEAN DEFAULT true NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_ticket_types PRIMARY KEY (id), 
	CONSTRAINT ck_ticket_types_capacity_non_negative CHECK (capacity >= 0), 
	CONSTRAINT ck_ticket_types_within_capacity CHECK (sold >= 0 AND sold <= capacity), 
	CONSTRAINT ck_ticket_types_price_non_negative CHECK (price_amount >= 0), 
	CONSTRAINT ck_ticket_types_currency_iso CHECK (currency ~ '^[A-Z]{3}$'), 
	CONSTRAINT ck_ticket_types_max_per_order_range CHECK (max_per_order BETWEEN 1 AND 100), 
	CONSTRAINT ck_ticket_types_one_deposit_form CHECK (deposit_amount IS NULL OR deposit_percent IS NULL), 
	CONSTRAINT ck_ticket_types_deposit_amount_range CHECK (deposit_amount IS NULL OR (deposit_amount > 0 AND deposit_amount < price_amount)), 
	CONSTRAINT ck_ticket_types_deposit_percent_range CHECK (deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 99), 
	CONSTRAINT ck_ticket_types_sales_window_order CHECK (sales_ends_at IS NULL OR sales_starts_at IS NULL OR sales_ends_at > sales_starts_at), 
	CONSTRAINT fk_ticket_types_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_ticket_types_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
);
CREATE INDEX ix_ticket_types_event_id ON ticket_types (event_id);

CREATE TABLE reservations (
	tenant_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	ticket_type_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	quantity INTEGER NOT NULL, 
	status reservation_status DEFAULT 'active' NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	waitlist_entry_id UUID, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_reservations PRIMARY KEY (id), 
	CONSTRAINT ck_reservations_quantity_range CHECK (quantity BETWEEN 1 AND 100), 
	CONSTRAINT fk_reservations_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_reservations_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT fk_reservations_ticket_type_id_ticket_types FOREIGN KEY(ticket_type_id) REFERENCES ticket_types (id), 
	CONSTRAINT fk_reservations_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE INDEX ix_reservations_due ON reservations (expires_at) WHERE status = 'active';
CREATE INDEX ix_reservations_user_id ON reservations (user_id);

CREATE TABLE registrations (
	tenant_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	ticket_type_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	reservation_id UUID, 
	quantity INTEGER NOT NULL, 
	status registration_status NOT NULL, 
	payment_mode payment_mode NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	amount_total BIGINT NOT NULL, 
	amount_due_now BIGINT NOT NULL, 
	amount_paid BIGINT DEFAULT 0 NOT NULL, 
	ticket_secret VARCHAR(32) NOT NULL, 
	confirmed_at TIMESTAMP WITH TIME ZONE, 
	cancelled_at TIMESTAMP WITH TIME ZONE, 
	cancel_reason VARCHAR(64), 
	checked_in_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_registrations PRIMARY KEY (id), 
	CONSTRAINT ck_registrations_quantity_range CHECK (quantity BETWEEN 1 AND 100), 
	CONSTRAINT ck_registrations_amounts_consistent CHECK (amount_paid >= 0 AND amount_due_now <= amount_total), 
	CONSTRAINT fk_registrations_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_registrations_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT fk_registrations_ticket_type_id_ticket_types FOREIGN KEY(ticket_type_id) REFERENCES ticket_types (id), 
	CONSTRAINT fk_registrations_user_id_users FOREIGN KEY(user_id) REFERENCES users (id), 
	CONSTRAINT fk_registrations_reservation_id_reservations FOREIGN KEY(reservation_id) REFERENCES reservations (id)
);
CREATE INDEX ix_registrations_event_id_id ON registrations (event_id, id);
CREATE INDEX ix_registrations_user_id ON registrations (user_id);
CREATE UNIQUE INDEX uq_registrations_event_user_live ON registrations (event_id, user_id) WHERE status <> 'cancelled';
CREATE UNIQUE INDEX uq_registrations_reservation_id ON registrations (reservation_id);

CREATE TABLE waitlist_entries (
	tenant_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	ticket_type_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	priority INTEGER DEFAULT 0 NOT NULL, 
	status waitlist_status DEFAULT 'waiting' NOT NULL, 
	reservation_id UUID, 
	seq BIGINT GENERATED ALWAYS AS IDENTITY, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_waitlist_entries PRIMARY KEY (id), 
	CONSTRAINT fk_waitlist_entries_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_waitlist_entries_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT fk_waitlist_entries_ticket_type_id_ticket_types FOREIGN KEY(ticket_type_id) REFERENCES ticket_types (id), 
	CONSTRAINT fk_waitlist_entries_user_id_users FOREIGN KEY(user_id) REFERENCES users (id), 
	CONSTRAINT fk_waitlist_entries_reservation_id_reservations FOREIGN KEY(reservation_id) REFERENCES reservations (id)
);
CREATE INDEX ix_waitlist_entries_queue ON waitlist_entries (ticket_type_id, priority DESC, seq) WHERE status = 'waiting';
CREATE INDEX ix_waitlist_entries_user_id ON waitlist_entries (user_id);
CREATE UNIQUE INDEX uq_waitlist_entries_type_user_live ON waitlist_entries (ticket_type_id, user_id) WHERE status IN ('waiting', 'offered');

CREATE TABLE check_ins (
	tenant_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	registration_id UUID NOT NULL, 
	nonce VARCHAR(128), 
	checked_in_by UUID NOT NULL, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_check_ins PRIMARY KEY (id), 
	CONSTRAINT fk_check_ins_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_check_ins_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT fk_check_ins_registration_id_registrations FOREIGN KEY(registration_id) REFERENCES registrations (id), 
	CONSTRAINT fk_check_ins_checked_in_by_users FOREIGN KEY(checked_in_by) REFERENCES users (id)
);
CREATE UNIQUE INDEX uq_check_ins_event_nonce ON check_ins (event_id, nonce);
CREATE UNIQUE INDEX uq_check_ins_registration_id ON check_ins (registration_id);

GRANT SELECT, INSERT, UPDATE ON events, ticket_types, reservations, registrations,
    waitlist_entries, check_ins TO __APP__;

-- Events a caller may see: any of the tenant it works in; public ones past the draft stage;
-- private ones of groups the caller belongs to. For the seat functions and write checks.
CREATE FUNCTION app_can_see_event(p_event uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM events e
        WHERE e.id = p_event AND e.deleted_at IS NULL
          AND (e.tenant_id = app_tenant_id()
               OR (e.status <> 'draft'
                   AND (e.visibility = 'public'
                        OR e.group_id IN (SELECT gm.group_id FROM group_members gm
                                          WHERE gm.user_id = app_user_id()
                                            AND gm.deleted_at IS NULL))))
    )
$$;

-- The only way seats are taken: an atomic conditional update per counter, hot rows locked last.
-- Answers 'ok', 'sold_out' (ticket type full, or a waitlist is ahead of the caller),
-- 'event_full' (the event-wide capacity), 'not_open' (event not published) or 'not_found'.
CREATE FUNCTION claim_seats(p_ticket_type uuid, p_quantity int, p_from_waitlist boolean)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_event uuid;
    v_event_capacity int;
BEGIN
    IF p_quantity < 1 THEN
        RAISE EXCEPTION 'quantity must be positive' USING ERRCODE = '22023';
    END IF;
    SELECT t.event_id INTO v_event FROM ticket_types t
    WHERE t.id = p_ticket_type AND t.deleted_at IS NULL;
    IF NOT FOUND OR NOT app_can_see_event(v_event) THEN
        RETURN 'not_found';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM events WHERE id = v_event AND status = 'published') THEN
        RETURN 'not_open';
    END IF;
    IF NOT p_from_waitlist AND EXISTS (
        SELECT 1 FROM waitlist_entries w
        WHERE w.ticket_type_id = p_ticket_type AND w.status = 'waiting'
    ) THEN
        RETURN 'sold_out';
    END IF;
    UPDATE ticket_types SET sold = sold + p_quantity
    WHERE id = p_ticket_type AND sold + p_quantity <= capacity;
    IF NOT FOUND THEN
        RETURN 'sold_out';
    END IF;
    SELECT capacity INTO v_event_capacity FROM events WHERE id = v_event;
    IF v_event_capacity IS NOT NULL THEN
        UPDATE events SET sold = sold + p_quantity
        WHERE id = v_event AND sold + p_quantity <= capacity;
        IF NOT FOUND THEN
            UPDATE ticket_types SET sold = sold - p_quantity WHERE id = p_ticket_type;
            RETURN 'event_full';
        END IF;
    END IF;
    RETURN 'ok';
END $$;

-- claim_seats() for the last statement of a transaction, sent in one round trip with its COMMIT
-- (domain/uow.py): a refusal must abort that COMMIT, so it is raised, not returned. SQLSTATE
-- AQ001, the message is claim_seats()'s verdict. The hot rows stay locked only while the
-- database itself runs the claim and the commit, never while the application thinks.
CREATE FUNCTION take_seats(p_ticket_type uuid, p_quantity int, p_from_waitlist boolean)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_verdict text := claim_seats(p_ticket_type, p_quantity, p_from_waitlist);
BEGIN
    IF v_verdict <> 'ok' THEN
        RAISE EXCEPTION USING ERRCODE = 'AQ001', MESSAGE = v_verdict;
    END IF;
END $$;

-- What claim_seats would answer, without taking anything (joining a waitlist asks this).
CREATE FUNCTION seats_verdict(p_ticket_type uuid, p_quantity int) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_type ticket_types%ROWTYPE;
    v_event events%ROWTYPE;
BEGIN
    SELECT * INTO v_type FROM ticket_types t WHERE t.id = p_ticket_type AND t.deleted_at IS NULL;
    IF NOT FOUND OR NOT app_can_see_event(v_type.event_id) THEN
        RETURN 'not_found';
    END IF;
    SELECT * INTO v_event FROM events WHERE id = v_type.event_id;
    IF v_event.status <> 'published' THEN
        RETURN 'not_open';
    END IF;
    IF EXISTS (SELECT 1 FROM waitlist_entries w
               WHERE w.ticket_type_id = p_ticket_type AND w.status = 'waiting')
       OR v_type.sold + p_quantity > v_type.capacity THEN
        RETURN 'sold_out';
    END IF;
    IF v_event.capacity IS NOT NULL AND v_event.sold + p_quantity > v_event.capacity THEN
        RETURN 'event_full';
    END IF;
    RETURN 'ok';
END $$;

-- Seats go back when a hold or registration ends. Allowed to whoever may see the event, or
-- holds a hold or registration of that ticket type (the event may have been unpublished since).
CREATE FUNCTION release_seats(p_ticket_type uuid, p_quantity int) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_event uuid;
BEGIN
    UPDATE ticket_types SET sold = sold - p_quantity
    WHERE id = p_ticket_type
      AND (app_can_see_event(event_id)
           OR EXISTS (SELECT 1 FROM registrations r
                      WHERE r.ticket_type_id = p_ticket_type AND r.user_id = app_user_id())
           OR EXISTS (SELECT 1 FROM reservations r
                      WHERE r.ticket_type_id = p_ticket_type AND r.user_id = app_user_id()))
    RETURNING event_id INTO v_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown ticket type %', p_ticket_type USING ERRCODE = '22023';
    END IF;
    UPDATE events SET sold = sold - p_quantity WHERE id = v_event AND capacity IS NOT NULL;
END $$;

-- Work for the background sweeper, across tenants: only ids, which it then handles in each
-- tenant's own context.
CREATE FUNCTION due_reservations(p_limit int) RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.tenant_id FROM reservations r
    WHERE r.status = 'active' AND r.expires_at <= now()
    ORDER BY r.expires_at LIMIT p_limit
$$;

CREATE FUNCTION waitlists_with_free_seats(p_limit int)
RETURNS TABLE (ticket_type_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT t.id, t.tenant_id FROM ticket_types t JOIN events e ON e.id = t.event_id
    WHERE t.sold < t.capacity AND t.deleted_at IS NULL AND t.is_active
      AND e.status = 'published' AND e.deleted_at IS NULL
      AND (e.capacity IS NULL OR e.sold < e.capacity)
      AND EXISTS (SELECT 1 FROM waitlist_entries w
                  WHERE w.ticket_type_id = t.id AND w.status = 'waiting')
    LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION app_can_see_event(uuid), claim_seats(uuid, int, boolean),
    take_seats(uuid, int, boolean), seats_verdict(uuid, int), release_seats(uuid, int), due_reservations(int),
    waitlists_with_free_seats(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_can_see_event(uuid), claim_seats(uuid, int, boolean),
    take_seats(uuid, int, boolean), seats_verdict(uuid, int), release_seats(uuid, int), due_reservations(int),
    waitlists_with_free_seats(int) TO __APP__;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_tenant ON events
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY events_visible ON events FOR SELECT USING (
    deleted_at IS NULL AND status <> 'draft'
    AND (visibility = 'public'
         OR group_id IN (SELECT gm.group_id FROM group_members gm
                         WHERE gm.user_id = app_user_id() AND gm.deleted_at IS NULL))
);

ALTER TABLE ticket_types ENABLE ROW LEVEL SECURITY;
CREATE POLICY ticket_types_tenant ON ticket_types
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
-- Correlated, so it is one index lookup per row, not a scan of every visible event.
CREATE POLICY ticket_types_visible ON ticket_types FOR SELECT
    USING (EXISTS (SELECT 1 FROM events e WHERE e.id = ticket_types.event_id));  -- RLS of events

-- Participants act on their own rows, for events they can see; organizers on their tenant's.
ALTER TABLE reservations ENABLE ROW LEVEL SECURITY;
CREATE POLICY reservations_tenant ON reservations
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY reservations_own ON reservations
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
-- New rows only for events the participant can see (later changes, e.g. cancelling after the
-- event was unpublished, stay possible).
CREATE POLICY reservations_own_new ON reservations AS RESTRICTIVE FOR INSERT
    WITH CHECK (tenant_id = app_tenant_id() OR app_can_see_event(event_id));

ALTER TABLE registrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY registrations_tenant ON registrations
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY registrations_own ON registrations
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
-- New rows only for events the participant can see (later changes, e.g. cancelling after the
-- event was unpublished, stay possible).
CREATE POLICY registrations_own_new ON registrations AS RESTRICTIVE FOR INSERT
    WITH CHECK (tenant_id = app_tenant_id() OR app_can_see_event(event_id));

ALTER TABLE waitlist_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY waitlist_entries_tenant ON waitlist_entries
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY waitlist_entries_own ON waitlist_entries
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
-- New rows only for events the participant can see (later changes, e.g. cancelling after the
-- event was unpublished, stay possible).
CREATE POLICY waitlist_entries_own_new ON waitlist_entries AS RESTRICTIVE FOR INSERT
    WITH CHECK (tenant_id = app_tenant_id() OR app_can_see_event(event_id));

ALTER TABLE check_ins ENABLE ROW LEVEL SECURITY;
CREATE POLICY check_ins_tenant ON check_ins
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

-- Participants' actions raise events of the organizer's tenant (registration.created, ...).
-- Each such action first writes the participant's own row in that tenant (a hold, a
-- registration, a waitlist entry), so those rows vouch for it: index lookups by user, no scan.
DROP POLICY outbox_append ON outbox;
CREATE POLICY outbox_append ON outbox FOR INSERT WITH CHECK (
    tenant_id IS NULL OR tenant_id = app_tenant_id()
    OR tenant_id IN (SELECT r.tenant_id FROM registrations r WHERE r.user_id = app_user_id())
    OR tenant_id IN (SELECT r.tenant_id FROM reservations r WHERE r.user_id = app_user_id())
    OR tenant_id IN (SELECT w.tenant_id FROM waitlist_entries w WHERE w.user_id = app_user_id())
);

-- A participant's place in a queue of other people's entries: only the number leaves.
CREATE FUNCTION waitlist_position(p_entry uuid) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) + 1 FROM waitlist_entries w, waitlist_entries me
    WHERE me.id = p_entry
      AND (me.user_id = app_user_id() OR me.tenant_id = app_tenant_id())
      AND w.ticket_type_id = me.ticket_type_id AND w.status = 'waiting' AND w.id <> me.id
      AND (w.priority > me.priority OR (w.priority = me.priority AND w.seq < me.seq))
$$;
REVOKE ALL ON FUNCTION waitlist_position(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION waitlist_position(uuid) TO __APP__;

-- Organizers see the accounts of their events' participants (names and e-mails are shown to
-- owners and moderators only, by the API).
CREATE POLICY users_participants ON users FOR SELECT USING (
    id IN (SELECT r.user_id FROM registrations r WHERE r.tenant_id = app_tenant_id())
    OR id IN (SELECT w.user_id FROM waitlist_entries w WHERE w.tenant_id = app_tenant_id())
);
