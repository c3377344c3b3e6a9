-- 0023: seat counters out of the rows other tables reference, sharded. The design and its
-- reasons are in sql/versions/0023_seat_counters.py.

CREATE TABLE seat_counters (
	tenant_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	counter_id UUID NOT NULL, 
	shard SMALLINT NOT NULL, 
	capacity INTEGER NOT NULL, 
	sold INTEGER DEFAULT 0 NOT NULL, 
	CONSTRAINT pk_seat_counters PRIMARY KEY (counter_id, shard), 
	CONSTRAINT ck_seat_counters_within_capacity CHECK (sold >= 0 AND sold <= capacity), 
	CONSTRAINT ck_seat_counters_shard_range CHECK (shard BETWEEN 0 AND 15), 
	CONSTRAINT fk_seat_counters_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_seat_counters_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
) WITH (fillfactor = 50);
CREATE INDEX ix_seat_counters_event_id ON seat_counters (event_id);

ALTER TABLE seat_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY seat_counters_tenant ON seat_counters
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
-- Whoever sees the event sees how full it is (as ticket_types_visible).
CREATE POLICY seat_counters_visible ON seat_counters FOR SELECT
    USING (EXISTS (SELECT 1 FROM events e WHERE e.id = seat_counters.event_id));  -- RLS of events
-- Read only: every write goes through the SECURITY DEFINER functions below.
GRANT SELECT ON seat_counters TO __APP__;

ALTER TABLE reservations ADD COLUMN seat_shard SMALLINT, ADD COLUMN event_seat_shard SMALLINT;
ALTER TABLE registrations ADD COLUMN seat_shard SMALLINT, ADD COLUMN event_seat_shard SMALLINT;

-- Room spread over the 16 shards: shard i gets room / 16, the first room % 16 one more.
CREATE FUNCTION seat_share(p_total int, p_shard int) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_total / 16 + CASE WHEN p_shard < p_total % 16 THEN 1 ELSE 0 END
$$;

-- A counter's 16 shards, holding p_sold seats already (spread like the room).
CREATE FUNCTION seat_counter_open(
    p_tenant uuid, p_event uuid, p_counter uuid, p_capacity int, p_sold int
) RETURNS void LANGUAGE sql VOLATILE SET search_path = public, pg_temp AS $$
    INSERT INTO seat_counters (tenant_id, event_id, counter_id, shard, capacity, sold)
    SELECT p_tenant, p_event, p_counter, s,
           seat_share(p_sold, s) + seat_share(p_capacity - p_sold, s), seat_share(p_sold, s)
    FROM generate_series(0, 15) s
$$;

-- A new capacity: the counter's shards locked in shard order, the room spread again (each shard
-- keeps the seats it gave). Refused below what is taken.
CREATE FUNCTION seat_counter_resize(p_counter uuid, p_capacity int) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_sold int;
BEGIN
    SELECT coalesce(sum(sold), 0) INTO v_sold FROM (
        SELECT sold FROM seat_counters WHERE counter_id = p_counter ORDER BY shard FOR UPDATE
    ) s;
    IF p_capacity < v_sold THEN
        RAISE EXCEPTION 'capacity % is below the % seats taken', p_capacity, v_sold
            USING ERRCODE = '23514';
    END IF;
    UPDATE seat_counters SET capacity = sold + seat_share(p_capacity - v_sold, shard)
    WHERE counter_id = p_counter;
END $$;

-- Take p_quantity seats of one counter; the shard that gave them, NULL when the counter's total
-- room cannot fit them, -1 when the counter has no shards (no limit).
--   1. A random shard with room that no one holds (FOR UPDATE SKIP LOCKED): never waits.
--   2. Else each shard with room, in order from there, waiting for it.
--   3. Else every shard, locked in shard order, and room moved into the roomiest one when the
--      quantity fits the total but no single shard; NULL when even the total cannot fit it.
-- Deadlock freedom: a transaction waits for a shard of a counter only while it holds no other
-- shard of that counter (2), or in shard order (3); ticket type's counter before the event's.
-- A row whose room is gone by the time it is locked stays locked though not taken (PostgreSQL
-- keeps the lock of a row that fails the re-check): 1 and each try of 2 run in a
-- subtransaction that is rolled back when it takes nothing, so that no such lock is held
-- while waiting for another shard.
CREATE FUNCTION seat_take(p_counter uuid, p_quantity int) RETURNS int
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_start int := floor(random() * 16)::int;
    v_shard int;
    v_room int;
    v_shards int;
    v_need int;
    v_move int;
    r record;
BEGIN
    BEGIN
        SELECT shard INTO v_shard FROM seat_counters
        WHERE counter_id = p_counter AND capacity - sold >= p_quantity
        ORDER BY (shard + 16 - v_start) % 16 LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'AQ002';  -- undoes the subtransaction's locks
        END IF;
        -- Locked, the row is its latest version and still has the room: this cannot miss.
        UPDATE seat_counters SET sold = sold + p_quantity
        WHERE counter_id = p_counter AND shard = v_shard;
        RETURN v_shard;
    EXCEPTION WHEN SQLSTATE 'AQ002' THEN
        NULL;
    END;
    FOR r IN SELECT f.shard FROM seat_counters f
             WHERE f.counter_id = p_counter AND f.capacity - f.sold >= p_quantity
             ORDER BY (f.shard + 16 - v_start) % 16 LOOP
        BEGIN
            UPDATE seat_counters SET sold = sold + p_quantity
            WHERE counter_id = p_counter AND shard = r.shard AND sold + p_quantity <= capacity;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'AQ002';
            END IF;
            RETURN r.shard;
        EXCEPTION WHEN SQLSTATE 'AQ002' THEN
            NULL;
        END;
    END LOOP;
    SELECT coalesce(sum(capacity - sold), 0), count(*) INTO v_room, v_shards FROM (
        SELECT capacity, sold FROM seat_counters WHERE counter_id = p_counter
        ORDER BY shard FOR UPDATE
    ) s;
    IF v_shards = 0 THEN
        RETURN -1;
    END IF;
    IF v_room < p_quantity THEN
        RETURN NULL;
    END IF;
    SELECT shard, p_quantity - (capacity - sold) INTO v_shard, v_need FROM seat_counters
    WHERE counter_id = p_counter ORDER BY capacity - sold DESC, (shard + 16 - v_start) % 16 LIMIT 1;
    FOR r IN SELECT shard, capacity - sold AS room FROM seat_counters
             WHERE counter_id = p_counter AND shard <> v_shard AND capacity > sold
             ORDER BY capacity - sold DESC, shard LOOP
        EXIT WHEN v_need <= 0;
        v_move := least(r.room, v_need);
        UPDATE seat_counters SET capacity = capacity - v_move
        WHERE counter_id = p_counter AND shard = r.shard;
        UPDATE seat_counters SET capacity = capacity + v_move
        WHERE counter_id = p_counter AND shard = v_shard;
        v_need := v_need - v_move;
    END LOOP;
    UPDATE seat_counters SET sold = sold + p_quantity WHERE counter_id = p_counter AND shard = v_shard;
    RETURN v_shard;
END $$;

-- Give p_quantity seats back to the shard that gave them; when that is unknown (taken before
-- 0023, or before the event had a capacity), from the shards holding seats, in shard order.
CREATE FUNCTION seat_give(p_counter uuid, p_quantity int, p_shard int) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_left int := p_quantity;
    v_move int;
    r record;
BEGIN
    IF p_shard IS NOT NULL THEN
        UPDATE seat_counters SET sold = sold - p_quantity
        WHERE counter_id = p_counter AND shard = p_shard AND sold >= p_quantity;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    FOR r IN SELECT shard, sold FROM seat_counters WHERE counter_id = p_counter AND sold > 0
             ORDER BY shard FOR UPDATE LOOP
        EXIT WHEN v_left = 0;
        v_move := least(r.sold, v_left);
        UPDATE seat_counters SET sold = sold - v_move WHERE counter_id = p_counter AND shard = r.shard;
        v_left := v_left - v_move;
    END LOOP;
    IF v_left > 0 THEN
        RAISE EXCEPTION 'more seats given back to % than it has taken', p_counter
            USING ERRCODE = '23514';
    END IF;
END $$;

-- Counters for what exists: every ticket type, and every event with a capacity.
INSERT INTO seat_counters (tenant_id, event_id, counter_id, shard, capacity, sold)
SELECT t.tenant_id, t.event_id, t.id, s,
       seat_share(t.sold, s) + seat_share(t.capacity - t.sold, s), seat_share(t.sold, s)
FROM ticket_types t, generate_series(0, 15) s;
INSERT INTO seat_counters (tenant_id, event_id, counter_id, shard, capacity, sold)
SELECT e.tenant_id, e.id, e.id, s,
       seat_share(e.sold, s) + seat_share(e.capacity - e.sold, s), seat_share(e.sold, s)
FROM events e, generate_series(0, 15) s WHERE e.capacity IS NOT NULL;

ALTER TABLE ticket_types DROP COLUMN sold;
ALTER TABLE events DROP COLUMN sold;

-- `sold` stays readable wherever it was read: `t.sold` / `e.sold` on a row of ticket_types or
-- events is PostgreSQL's functional notation for sold(t) / sold(e). The caller's RLS applies.
CREATE FUNCTION sold(ticket_types) RETURNS int
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(sum(c.sold), 0)::int FROM seat_counters c WHERE c.counter_id = $1.id
$$;
CREATE FUNCTION sold(events) RETURNS int
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(sum(c.sold), 0)::int FROM seat_counters c WHERE c.counter_id = $1.id
$$;

-- Counters follow the capacities whoever writes them (the API, a seed, a test).
CREATE FUNCTION ticket_type_seats() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM seat_counter_open(NEW.tenant_id, NEW.event_id, NEW.id, NEW.capacity, 0);
    ELSE
        PERFORM seat_counter_resize(NEW.id, NEW.capacity);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER seats_open AFTER INSERT ON ticket_types
    FOR EACH ROW EXECUTE FUNCTION ticket_type_seats();
CREATE TRIGGER seats_resize AFTER UPDATE OF capacity ON ticket_types
    FOR EACH ROW WHEN (OLD.capacity IS DISTINCT FROM NEW.capacity)
    EXECUTE FUNCTION ticket_type_seats();

-- An event-wide capacity set for the first time starts from what its ticket types hold, counted
-- with their shards locked (claims in flight finish first, see claim_seats); removed, its
-- counter goes.
CREATE FUNCTION event_seats() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_sold int;
BEGIN
    IF NEW.capacity IS NULL THEN
        DELETE FROM seat_counters WHERE counter_id = NEW.id;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM seat_counter_open(NEW.tenant_id, NEW.id, NEW.id, NEW.capacity, 0);
    ELSIF OLD.capacity IS NULL THEN
        SELECT coalesce(sum(sold), 0) INTO v_sold FROM (
            SELECT c.sold FROM seat_counters c JOIN ticket_types t ON t.id = c.counter_id
            WHERE c.event_id = NEW.id AND c.counter_id <> NEW.id AND t.deleted_at IS NULL
            ORDER BY c.counter_id, c.shard FOR UPDATE OF c
        ) s;
        IF NEW.capacity < v_sold THEN
            RAISE EXCEPTION 'capacity % is below the % seats taken', NEW.capacity, v_sold
                USING ERRCODE = '23514';
        END IF;
        PERFORM seat_counter_open(NEW.tenant_id, NEW.id, NEW.id, NEW.capacity, v_sold);
    ELSE
        PERFORM seat_counter_resize(NEW.id, NEW.capacity);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER seats_open AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.capacity IS NOT NULL) EXECUTE FUNCTION event_seats();
CREATE TRIGGER seats_resize AFTER UPDATE OF capacity ON events
    FOR EACH ROW WHEN (OLD.capacity IS DISTINCT FROM NEW.capacity)
    EXECUTE FUNCTION event_seats();

-- Seats taken of a ticket type, or (p_ticket_type NULL) of the event as its capacity counts
-- them, with those shards locked until the transaction ends: a capacity edit checks the new
-- capacity against this, then writes it (the triggers above respread the room).
CREATE FUNCTION lock_seats(p_event uuid, p_ticket_type uuid) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_sold int;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events WHERE id = p_event AND tenant_id = app_tenant_id()) THEN
        RAISE EXCEPTION 'unknown event %', p_event USING ERRCODE = '22023';
    END IF;
    IF p_ticket_type IS NOT NULL OR EXISTS (SELECT 1 FROM seat_counters WHERE counter_id = p_event) THEN
        SELECT coalesce(sum(sold), 0) INTO v_sold FROM (
            SELECT sold FROM seat_counters
            WHERE counter_id = coalesce(p_ticket_type, p_event) AND event_id = p_event
            ORDER BY shard FOR UPDATE
        ) s;
    ELSE
        SELECT coalesce(sum(sold), 0) INTO v_sold FROM (
            SELECT c.sold FROM seat_counters c JOIN ticket_types t ON t.id = c.counter_id
            WHERE c.event_id = p_event AND t.deleted_at IS NULL
            ORDER BY c.counter_id, c.shard FOR UPDATE OF c
        ) s;
    END IF;
    RETURN v_sold;
END $$;

DROP FUNCTION take_seats(uuid, int, boolean);
DROP FUNCTION claim_seats(uuid, int, boolean);
DROP FUNCTION release_seats(uuid, int);

-- The only way seats are taken: a shard of the ticket type's counter, then one of the event's
-- (always in that order). Answers 'ok', 'sold_out' (the ticket type's total room cannot fit
-- p_quantity, or a waitlist is ahead of the caller), 'event_full' (the event's), 'not_open' or
-- 'not_found'. The shards that gave the seats are written on the registration or hold they are
-- for, so that they go back there.
CREATE FUNCTION claim_seats(
    p_ticket_type uuid, p_quantity int, p_from_waitlist boolean,
    p_registration uuid DEFAULT NULL, p_reservation uuid DEFAULT NULL
) RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_event uuid;
    v_shard int;
    v_event_shard int;
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
    v_shard := seat_take(p_ticket_type, p_quantity);
    IF v_shard IS NULL OR v_shard < 0 THEN
        RETURN 'sold_out';
    END IF;
    -- Read after the ticket type's shard is held: an event capacity being set counts it.
    IF EXISTS (SELECT 1 FROM events WHERE id = v_event AND capacity IS NOT NULL) THEN
        v_event_shard := seat_take(v_event, p_quantity);
        IF v_event_shard IS NULL THEN
            PERFORM seat_give(p_ticket_type, p_quantity, v_shard);
            RETURN 'event_full';
        END IF;
        IF v_event_shard < 0 THEN
            v_event_shard := NULL;  -- the capacity was removed meanwhile
        END IF;
    END IF;
    IF p_registration IS NOT NULL THEN
        UPDATE registrations SET seat_shard = v_shard, event_seat_shard = v_event_shard
        WHERE id = p_registration;
    ELSIF p_reservation IS NOT NULL THEN
        UPDATE reservations SET seat_shard = v_shard, event_seat_shard = v_event_shard
        WHERE id = p_reservation;
    END IF;
    RETURN 'ok';
END $$;

-- claim_seats() for the last statement of a transaction, sent in one round trip with its COMMIT
-- (domain/uow.py): a refusal must abort that COMMIT, so it is raised, not returned. SQLSTATE
-- AQ001, the message is claim_seats()'s verdict.
CREATE FUNCTION take_seats(
    p_ticket_type uuid, p_quantity int, p_from_waitlist boolean,
    p_registration uuid DEFAULT NULL, p_reservation uuid DEFAULT NULL
) RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
DECLARE
    v_verdict text := claim_seats(
        p_ticket_type, p_quantity, p_from_waitlist, p_registration, p_reservation);
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
       OR (SELECT coalesce(sum(capacity - sold), 0) FROM seat_counters
           WHERE counter_id = p_ticket_type) < p_quantity THEN
        RETURN 'sold_out';
    END IF;
    IF v_event.capacity IS NOT NULL AND (SELECT coalesce(sum(capacity - sold), 0)
                                         FROM seat_counters WHERE counter_id = v_event.id) < p_quantity THEN
        RETURN 'event_full';
    END IF;
    RETURN 'ok';
END $$;

-- Seats go back, to the shards that gave them, when a hold or registration ends. Allowed to
-- whoever may see the event, or holds a hold or registration of that ticket type (the event may
-- have been unpublished since).
CREATE FUNCTION release_seats(
    p_ticket_type uuid, p_quantity int, p_shard int DEFAULT NULL, p_event_shard int DEFAULT NULL
) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_event uuid;
BEGIN
    SELECT t.event_id INTO v_event FROM ticket_types t
    WHERE t.id = p_ticket_type
      AND (app_can_see_event(t.event_id)
           OR EXISTS (SELECT 1 FROM registrations r
                      WHERE r.ticket_type_id = p_ticket_type AND r.user_id = app_user_id())
           OR EXISTS (SELECT 1 FROM reservations r
                      WHERE r.ticket_type_id = p_ticket_type AND r.user_id = app_user_id()));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown ticket type %', p_ticket_type USING ERRCODE = '22023';
    END IF;
    PERFORM seat_give(p_ticket_type, p_quantity, p_shard);
    IF EXISTS (SELECT 1 FROM seat_counters WHERE counter_id = v_event) THEN
        PERFORM seat_give(v_event, p_quantity, p_event_shard);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION waitlists_with_free_seats(p_limit int)
RETURNS TABLE (ticket_type_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT t.id, t.tenant_id FROM ticket_types t JOIN events e ON e.id = t.event_id
    WHERE t.deleted_at IS NULL AND t.is_active
      AND e.status = 'published' AND e.deleted_at IS NULL
      AND EXISTS (SELECT 1 FROM waitlist_entries w
                  WHERE w.ticket_type_id = t.id AND w.status = 'waiting')
      AND EXISTS (SELECT 1 FROM seat_counters c WHERE c.counter_id = t.id AND c.sold < c.capacity)
      AND (e.capacity IS NULL
           OR EXISTS (SELECT 1 FROM seat_counters c WHERE c.counter_id = e.id AND c.sold < c.capacity))
    LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION seat_counter_open(uuid, uuid, uuid, int, int),
    seat_counter_resize(uuid, int), seat_take(uuid, int), seat_give(uuid, int, int),
    ticket_type_seats(), event_seats(), lock_seats(uuid, uuid),
    claim_seats(uuid, int, boolean, uuid, uuid), take_seats(uuid, int, boolean, uuid, uuid),
    release_seats(uuid, int, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_seats(uuid, uuid), claim_seats(uuid, int, boolean, uuid, uuid),
    take_seats(uuid, int, boolean, uuid, uuid), release_seats(uuid, int, int, int) TO __APP__;
