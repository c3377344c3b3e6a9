-- 0006: notifications. Preferences per user, the notification log (one row per source event,
-- recipient and channel), the record of emitted event reminders; their row level security and
-- the two discovery functions the background jobs use across tenants.

CREATE TYPE notification_channel AS ENUM ('telegram', 'email', 'none');
CREATE TYPE notification_status AS ENUM ('queued', 'sent', 'failed', 'deferred');

CREATE TABLE notification_preferences (
	user_id UUID NOT NULL, 
	channel notification_channel, 
	quiet_start TIME WITHOUT TIME ZONE, 
	quiet_end TIME WITHOUT TIME ZONE, 
	timezone VARCHAR(64), 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_notification_preferences PRIMARY KEY (user_id), 
	CONSTRAINT ck_notification_preferences_quiet_hours_complete CHECK ((quiet_start IS NULL) = (quiet_end IS NULL) AND (quiet_start IS NULL) = (timezone IS NULL)), 
	CONSTRAINT ck_notification_preferences_quiet_hours_not_empty CHECK (quiet_start <> quiet_end), 
	CONSTRAINT fk_notification_preferences_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE TABLE notifications (
	tenant_id UUID, 
	source_event_id UUID NOT NULL, 
	source_event_type VARCHAR(128) NOT NULL, 
	template VARCHAR(64) NOT NULL, 
	user_id UUID NOT NULL, 
	channel notification_channel NOT NULL, 
	address VARCHAR(320) NOT NULL, 
	language VARCHAR(8) NOT NULL, 
	subject TEXT NOT NULL, 
	body_text TEXT NOT NULL, 
	body_html TEXT NOT NULL, 
	registration_id UUID, 
	event_id UUID, 
	status notification_status DEFAULT 'queued' NOT NULL, 
	due_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	attempts INTEGER DEFAULT 0 NOT NULL, 
	last_error TEXT, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_notifications PRIMARY KEY (id), 
	CONSTRAINT ck_notifications_real_channel CHECK (channel <> 'none'), 
	CONSTRAINT ck_notifications_attempts_non_negative CHECK (attempts >= 0), 
	CONSTRAINT fk_notifications_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_notifications_user_id_users FOREIGN KEY(user_id) REFERENCES users (id), 
	CONSTRAINT fk_notifications_registration_id_registrations FOREIGN KEY(registration_id) REFERENCES registrations (id), 
	CONSTRAINT fk_notifications_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
);
CREATE INDEX ix_notifications_due ON notifications (due_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX ix_notifications_tenant_id_created_at ON notifications (tenant_id, created_at);
CREATE INDEX ix_notifications_user_id ON notifications (user_id);
CREATE UNIQUE INDEX uq_notifications_source_user_channel ON notifications (source_event_id, user_id, channel);
CREATE UNIQUE INDEX uq_notifications_ticket ON notifications (registration_id, user_id, channel) WHERE template = 'ticket';

CREATE TABLE event_reminders (
	event_id UUID NOT NULL, 
	tenant_id UUID NOT NULL, 
	starts_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	emitted_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_event_reminders PRIMARY KEY (event_id), 
	CONSTRAINT fk_event_reminders_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT fk_event_reminders_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id)
);

GRANT SELECT, INSERT, UPDATE ON notification_preferences, notifications, event_reminders TO __APP__;

-- Preferences are the user's own. The tenant an organizer (or the notification worker) works in
-- may read those of its participants, to address a message to them; nobody else's.
ALTER TABLE notification_preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY notification_preferences_own ON notification_preferences
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
CREATE POLICY notification_preferences_participants ON notification_preferences FOR SELECT USING (
    user_id IN (SELECT r.user_id FROM registrations r WHERE r.tenant_id = app_tenant_id())
    OR user_id IN (SELECT w.user_id FROM waitlist_entries w WHERE w.tenant_id = app_tenant_id())
);

-- Tenant messages are the tenant's. Platform messages (tenant_id IS NULL: the welcome after
-- user.registered) belong to their recipient alone: only a transaction acting as that user (the
-- worker does, for that message) reads or writes them; no tenant context ever sees them.
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY notifications_tenant ON notifications
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY notifications_platform ON notifications
    USING (tenant_id IS NULL AND user_id = app_user_id())
    WITH CHECK (tenant_id IS NULL AND user_id = app_user_id());

ALTER TABLE event_reminders ENABLE ROW LEVEL SECURITY;
CREATE POLICY event_reminders_tenant ON event_reminders
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

-- Work for the background jobs, across tenants: only ids, each then handled in its own context.
CREATE FUNCTION due_notifications(p_now timestamptz, p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid, user_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT n.id, n.tenant_id, n.user_id FROM notifications n
    WHERE n.status IN ('queued', 'deferred') AND n.due_at <= p_now
    ORDER BY n.due_at LIMIT p_limit
$$;

-- Published events starting within p_lead whose reminder has not been emitted yet.
CREATE FUNCTION due_event_reminders(p_now timestamptz, p_lead interval, p_limit int)
RETURNS TABLE (event_id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT e.id, e.tenant_id FROM events e
    WHERE e.status = 'published' AND e.deleted_at IS NULL
      AND e.starts_at > p_now AND e.starts_at <= p_now + p_lead
      AND NOT EXISTS (SELECT 1 FROM event_reminders r WHERE r.event_id = e.id)
    ORDER BY e.starts_at LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION due_notifications(timestamptz, int),
    due_event_reminders(timestamptz, interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION due_notifications(timestamptz, int),
    due_event_reminders(timestamptz, interval, int) TO __APP__;
