-- 0005: payments and refunds; prepayment settings of events; the lookups webhooks and the
-- payment jobs use across tenants; row level security for organizers and for payers.

CREATE TYPE payment_status AS ENUM (
    'pending', 'processing', 'completed', 'failed', 'partially_refunded', 'refunded'
);
CREATE TYPE payment_purpose AS ENUM ('full', 'deposit', 'remainder');
CREATE TYPE refund_status AS ENUM ('requested', 'pending', 'succeeded', 'failed');

-- Prepayment: the remainder of a deposit is due by remainder_due_at (null: the start); an
-- unpaid remainder cancels the registration, refunding the deposit if the event says so.
ALTER TABLE events
    ADD COLUMN remainder_due_at TIMESTAMP WITH TIME ZONE,
    ADD COLUMN refund_deposit_on_default BOOLEAN DEFAULT false NOT NULL,
    ADD CONSTRAINT ck_events_remainder_due_order
        CHECK (remainder_due_at IS NULL OR remainder_due_at <= starts_at);

CREATE TABLE payments (
	tenant_id UUID NOT NULL, 
	registration_id UUID NOT NULL, 
	event_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	purpose payment_purpose NOT NULL, 
	provider VARCHAR(32) NOT NULL, 
	provider_ref VARCHAR(255) NOT NULL, 
	amount BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	amount_refunded BIGINT DEFAULT 0 NOT NULL, 
	status payment_status DEFAULT 'pending' NOT NULL, 
	checkout_url VARCHAR(2000), 
	client_secret VARCHAR(255), 
	failure_code VARCHAR(64), 
	applied_at TIMESTAMP WITH TIME ZONE, 
	processing_at TIMESTAMP WITH TIME ZONE, 
	completed_at TIMESTAMP WITH TIME ZONE, 
	failed_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_payments PRIMARY KEY (id), 
	CONSTRAINT ck_payments_amount_positive CHECK (amount > 0), 
	CONSTRAINT ck_payments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'), 
	CONSTRAINT ck_payments_refunds_match_status CHECK ((status IN ('pending', 'processing', 'completed', 'failed') AND amount_refunded = 0) OR (status = 'partially_refunded' AND amount_refunded > 0 AND amount_refunded < amount) OR (status = 'refunded' AND amount_refunded = amount)), 
	CONSTRAINT fk_payments_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_payments_registration_id_registrations FOREIGN KEY(registration_id) REFERENCES registrations (id), 
	CONSTRAINT fk_payments_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT fk_payments_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE INDEX ix_payments_refundable_event ON payments (event_id) WHERE status IN ('completed', 'partially_refunded');
CREATE INDEX ix_payments_registration_id ON payments (registration_id);
CREATE INDEX ix_payments_user_id ON payments (user_id);
CREATE UNIQUE INDEX uq_payments_provider_ref ON payments (provider, provider_ref);
CREATE UNIQUE INDEX uq_payments_registration_purpose_live ON payments (registration_id, purpose) WHERE status <> 'failed';

CREATE TABLE refunds (
	tenant_id UUID NOT NULL, 
	payment_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	amount BIGINT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	status refund_status DEFAULT 'requested' NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	note VARCHAR(500), 
	request_key VARCHAR(255) NOT NULL, 
	requested_by UUID, 
	provider_ref VARCHAR(255), 
	failure_code VARCHAR(64), 
	succeeded_at TIMESTAMP WITH TIME ZONE, 
	failed_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_refunds PRIMARY KEY (id), 
	CONSTRAINT ck_refunds_amount_positive CHECK (amount > 0), 
	CONSTRAINT ck_refunds_currency_iso CHECK (currency ~ '^[A-Z]{3}$'), 
	CONSTRAINT fk_refunds_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_refunds_payment_id_payments FOREIGN KEY(payment_id) REFERENCES payments (id), 
	CONSTRAINT fk_refunds_user_id_users FOREIGN KEY(user_id) REFERENCES users (id), 
	CONSTRAINT fk_refunds_requested_by_users FOREIGN KEY(requested_by) REFERENCES users (id)
);
CREATE INDEX ix_refunds_requested ON refunds (created_at) WHERE status = 'requested';
CREATE INDEX ix_refunds_user_id ON refunds (user_id);
CREATE UNIQUE INDEX uq_refunds_payment_provider_ref ON refunds (payment_id, provider_ref) WHERE provider_ref IS NOT NULL;
CREATE UNIQUE INDEX uq_refunds_payment_request_key ON refunds (payment_id, request_key);

-- The payment jobs' queues over registrations.
CREATE INDEX ix_registrations_awaiting_payment ON registrations (created_at) WHERE status = 'pending_payment';
CREATE INDEX ix_registrations_remainder_open ON registrations (event_id) WHERE status = 'confirmed' AND payment_mode = 'deposit' AND amount_paid < amount_total;

-- No DELETE: payments and refunds are records of money that moved.
GRANT SELECT, INSERT, UPDATE ON payments, refunds TO __APP__;

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY payments_tenant ON payments
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
-- Payers see their own payments, and start them only for their own registrations.
CREATE POLICY payments_own ON payments FOR SELECT USING (user_id = app_user_id());
CREATE POLICY payments_own_new ON payments FOR INSERT WITH CHECK (
    user_id = app_user_id()
    AND EXISTS (SELECT 1 FROM registrations r
                WHERE r.id = registration_id AND r.user_id = app_user_id()
                  AND r.tenant_id = payments.tenant_id)
);

ALTER TABLE refunds ENABLE ROW LEVEL SECURITY;
CREATE POLICY refunds_tenant ON refunds
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY refunds_own ON refunds FOR SELECT USING (user_id = app_user_id());

-- A webhook names a payment by the provider's reference and carries no tenant: this answers
-- the payment's id and tenant, nothing else; the webhook then works inside that tenant.
CREATE FUNCTION payment_by_reference(p_provider text, p_ref text)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT p.id, p.tenant_id FROM payments p WHERE p.provider = p_provider AND p.provider_ref = p_ref
$$;

-- Work for the payment jobs, across tenants: only ids, handled in each tenant's own context.
-- Registrations never paid in time (a payment being processed holds its seats).
CREATE FUNCTION registrations_awaiting_payment(p_timeout_s int, p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.tenant_id FROM registrations r
    WHERE r.status = 'pending_payment'
      AND r.created_at <= now() - make_interval(secs => p_timeout_s)
      AND NOT EXISTS (SELECT 1 FROM payments p
                      WHERE p.registration_id = r.id AND p.status = 'processing')
    ORDER BY r.created_at LIMIT p_limit
$$;

-- Deposit-paid registrations past their event's remainder deadline, remainder unpaid.
CREATE FUNCTION registrations_remainder_overdue(p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.id, r.tenant_id FROM registrations r JOIN events e ON e.id = r.event_id
    WHERE r.status = 'confirmed' AND r.payment_mode = 'deposit'
      AND r.amount_paid < r.amount_total AND r.checked_in_at IS NULL
      AND e.status = 'published' AND coalesce(e.remainder_due_at, e.starts_at) <= now()
      AND NOT EXISTS (SELECT 1 FROM payments p
                      WHERE p.registration_id = r.id AND p.status = 'processing')
    LIMIT p_limit
$$;

-- Payments of cancelled events holding money, whose refund the saga has not asked for yet.
CREATE FUNCTION cancelled_event_payments(p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT p.id, p.tenant_id FROM events e JOIN payments p ON p.event_id = e.id
    WHERE e.status = 'cancelled' AND p.status IN ('completed', 'partially_refunded')
      AND NOT EXISTS (SELECT 1 FROM refunds f
                      WHERE f.payment_id = p.id AND f.request_key = 'saga:event-cancelled')
    LIMIT p_limit
$$;

-- Refunds recorded but not yet handed to their provider.
CREATE FUNCTION refunds_to_submit(p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT f.id, f.tenant_id FROM refunds f WHERE f.status = 'requested'
    ORDER BY f.created_at LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION payment_by_reference(text, text), registrations_awaiting_payment(int, int),
    registrations_remainder_overdue(int), cancelled_event_payments(int), refunds_to_submit(int)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_by_reference(text, text),
    registrations_awaiting_payment(int, int), registrations_remainder_overdue(int),
    cancelled_event_payments(int), refunds_to_submit(int) TO __APP__;
