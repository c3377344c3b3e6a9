-- 0023 undone: the counters back in the ticket_types and events rows (sql/versions/0023_seat_counters.py).

DROP TRIGGER seats_open ON ticket_types;
DROP TRIGGER seats_resize ON ticket_types;
DROP TRIGGER seats_open ON events;
DROP TRIGGER seats_resize ON events;
DROP FUNCTION take_seats(uuid, int, boolean, uuid, uuid);
DROP FUNCTION claim_seats(uuid, int, boolean, uuid, uuid);
DROP FUNCTION release_seats(uuid, int, int, int);
DROP FUNCTION lock_seats(uuid, uuid);
DROP FUNCTION ticket_type_seats();
DROP FUNCTION event_seats();
DROP FUNCTION sold(ticket_types);
DROP FUNCTION sold(events);

ALTER TABLE ticket_types ADD COLUMN sold INTEGER DEFAULT 0 NOT NULL;
ALTER TABLE events ADD COLUMN sold INTEGER DEFAULT 0 NOT NULL;
UPDATE ticket_types t SET sold = c.sold
FROM (SELECT counter_id, sum(sold)::int AS sold FROM seat_counters GROUP BY counter_id) c
WHERE c.counter_id = t.id;
UPDATE events e SET sold = c.sold
FROM (SELECT counter_id, sum(sold)::int AS sold FROM seat_counters GROUP BY counter_id) c
WHERE c.counter_id = e.id;
ALTER TABLE ticket_types ADD CONSTRAINT ck_ticket_types_within_capacity
    CHECK (sold >= 0 AND sold <= capacity);
ALTER TABLE events ADD CONSTRAINT ck_events_within_capacity
    CHECK (sold >= 0 AND (capacity IS NULL OR sold <= capacity));

DROP FUNCTION seat_take(uuid, int);
DROP FUNCTION seat_give(uuid, int, int);
DROP FUNCTION seat_counter_resize(uuid, int);
DROP FUNCTION seat_counter_open(uuid, uuid, uuid, int, int);
DROP FUNCTION seat_share(int, int);
DROP TABLE seat_counters;
ALTER TABLE reservations DROP COLUMN seat_shard, DROP COLUMN event_seat_shard;
ALTER TABLE registrations DROP COLUMN seat_shard, DROP COLUMN event_seat_shard;

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
CREATE OR REPLACE FUNCTION seats_verdict(p_ticket_type uuid, p_quantity int) RETURNS text
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

CREATE OR REPLACE FUNCTION waitlists_with_free_seats(p_limit int)
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

REVOKE ALL ON FUNCTION claim_seats(uuid, int, boolean), take_seats(uuid, int, boolean),
    release_seats(uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_seats(uuid, int, boolean), take_seats(uuid, int, boolean),
    release_seats(uuid, int) TO __APP__;
