-- 0003: identity, organizations (the tenants), members, requests, invites, groups, and the
-- row level security that keeps tenants apart. __APP__ is the application role.

-- Context of the current transaction, set by the unit of work with set_config(..., true).
CREATE FUNCTION app_user_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;
CREATE FUNCTION app_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;
CREATE FUNCTION app_is_platform_admin() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(current_setting('app.platform_admin', true), '') = 'on' $$;
-- A secret the caller proved to hold (hash of an invite token, a login e-mail).
CREATE FUNCTION app_capability(name text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('app.' || name, true), '') $$;

-- The tenant owning a row addressed by id alone (e.g. /groups/{id}), so the API can check the
-- caller's membership of that tenant before entering it. Runs as the owner; answers only the
-- tenant id of a live row of a table that has one.
CREATE FUNCTION app_resource_tenant(resource text, resource_id uuid) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    result uuid;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = resource AND column_name = 'tenant_id'
    ) THEN
        RAISE EXCEPTION 'not a tenant table: %', resource USING ERRCODE = '22023';
    END IF;
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = resource AND column_name = 'deleted_at'
    ) THEN
        EXECUTE format('SELECT tenant_id FROM public.%I WHERE id = $1 AND deleted_at IS NULL',
                       resource) INTO result USING resource_id;
    ELSE
        EXECUTE format('SELECT tenant_id FROM public.%I WHERE id = $1', resource)
            INTO result USING resource_id;
    END IF;
    RETURN result;
END $$;
REVOKE ALL ON FUNCTION app_resource_tenant(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_resource_tenant(text, uuid) TO __APP__;

CREATE TYPE member_role AS ENUM ('owner', 'moderator', 'analyst');
CREATE TYPE organization_request_status AS ENUM ('pending', 'approved', 'rejected');

CREATE TABLE users (
	email VARCHAR(320), 
	password_hash VARCHAR(255), 
	telegram_id BIGINT, 
	telegram_username VARCHAR(64), 
	display_name VARCHAR(120) NOT NULL, 
	locale VARCHAR(16) DEFAULT 'en' NOT NULL, 
	is_platform_admin BOOLEAN DEFAULT false NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_users PRIMARY KEY (id)
);
CREATE UNIQUE INDEX uq_users_email ON users (email) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX uq_users_telegram_id ON users (telegram_id) WHERE deleted_at IS NULL;

CREATE TABLE organization_requests (
	user_id UUID NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	slug VARCHAR(64) NOT NULL, 
	description TEXT, 
	status organization_request_status DEFAULT 'pending' NOT NULL, 
	reviewed_by UUID, 
	reviewed_at TIMESTAMP WITH TIME ZONE, 
	review_comment TEXT, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_organization_requests PRIMARY KEY (id), 
	CONSTRAINT fk_organization_requests_user_id_users FOREIGN KEY(user_id) REFERENCES users (id), 
	CONSTRAINT fk_organization_requests_reviewed_by_users FOREIGN KEY(reviewed_by) REFERENCES users (id)
);
CREATE INDEX ix_organization_requests_user_id ON organization_requests (user_id);
CREATE UNIQUE INDEX uq_organization_requests_pending_user ON organization_requests (user_id) WHERE status = 'pending';

CREATE TABLE organizations (
	name VARCHAR(200) NOT NULL, 
	slug VARCHAR(64) NOT NULL, 
	description TEXT, 
	request_id UUID NOT NULL, 
	created_by UUID NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_organizations PRIMARY KEY (id), 
	CONSTRAINT fk_organizations_request_id_organization_requests FOREIGN KEY(request_id) REFERENCES organization_requests (id), 
	CONSTRAINT fk_organizations_created_by_users FOREIGN KEY(created_by) REFERENCES users (id)
);
CREATE UNIQUE INDEX uq_organizations_request_id ON organizations (request_id);
CREATE UNIQUE INDEX uq_organizations_slug ON organizations (slug) WHERE deleted_at IS NULL;

CREATE TABLE organization_members (
	tenant_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	role member_role NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_organization_members PRIMARY KEY (id), 
	CONSTRAINT fk_organization_members_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_organization_members_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE INDEX ix_organization_members_user_id ON organization_members (user_id);
CREATE UNIQUE INDEX uq_organization_members_tenant_user ON organization_members (tenant_id, user_id) WHERE deleted_at IS NULL;

CREATE TABLE organization_invites (
	tenant_id UUID NOT NULL, 
	email VARCHAR(320), 
	telegram_username VARCHAR(64), 
	role member_role NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	invited_by UUID NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	accepted_by UUID, 
	accepted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_organization_invites PRIMARY KEY (id), 
	CONSTRAINT fk_organization_invites_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_organization_invites_invited_by_users FOREIGN KEY(invited_by) REFERENCES users (id), 
	CONSTRAINT fk_organization_invites_accepted_by_users FOREIGN KEY(accepted_by) REFERENCES users (id)
);
CREATE INDEX ix_organization_invites_tenant_id ON organization_invites (tenant_id);
CREATE UNIQUE INDEX uq_organization_invites_token_hash ON organization_invites (token_hash);

CREATE TABLE groups (
	tenant_id UUID NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	description TEXT, 
	invite_code_hash VARCHAR(64), 
	invite_expires_at TIMESTAMP WITH TIME ZONE, 
	created_by UUID NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_groups PRIMARY KEY (id), 
	CONSTRAINT fk_groups_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_groups_created_by_users FOREIGN KEY(created_by) REFERENCES users (id)
);
CREATE UNIQUE INDEX uq_groups_invite_code_hash ON groups (invite_code_hash);
CREATE UNIQUE INDEX uq_groups_tenant_name ON groups (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE group_members (
	tenant_id UUID NOT NULL, 
	group_id UUID NOT NULL, 
	user_id UUID NOT NULL, 
	deleted_at TIMESTAMP WITH TIME ZONE, 
	id UUID NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, 
	CONSTRAINT pk_group_members PRIMARY KEY (id), 
	CONSTRAINT fk_group_members_tenant_id_organizations FOREIGN KEY(tenant_id) REFERENCES organizations (id), 
	CONSTRAINT fk_group_members_group_id_groups FOREIGN KEY(group_id) REFERENCES groups (id), 
	CONSTRAINT fk_group_members_user_id_users FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE INDEX ix_group_members_user_id ON group_members (user_id);
CREATE UNIQUE INDEX uq_group_members_group_user ON group_members (group_id, user_id) WHERE deleted_at IS NULL;

-- Every table may be touched only by the application role's policies below; no DELETE grants:
-- rows are soft-deleted.
GRANT SELECT, INSERT, UPDATE ON users, organization_requests, organizations,
    organization_members, organization_invites, groups, group_members TO __APP__;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
-- Users are platform-wide: one sees oneself, the members of the tenant one works in, and the
-- single account a login attempt names; anyone may sign up.
CREATE POLICY users_select ON users FOR SELECT USING (
    id = app_user_id()
    OR app_is_platform_admin()
    OR email = app_capability('login_email')
    OR telegram_id::text = app_capability('login_telegram')
    OR id IN (SELECT user_id FROM organization_members
              WHERE tenant_id = app_tenant_id() AND deleted_at IS NULL)
    OR id IN (SELECT user_id FROM group_members
              WHERE tenant_id = app_tenant_id() AND deleted_at IS NULL)
);
CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (true);
CREATE POLICY users_update ON users FOR UPDATE USING (id = app_user_id());

ALTER TABLE organization_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_requests_access ON organization_requests
    USING (user_id = app_user_id() OR app_is_platform_admin())
    WITH CHECK (user_id = app_user_id() OR app_is_platform_admin());

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_tenant ON organizations
    USING (id = app_tenant_id()) WITH CHECK (id = app_tenant_id());
CREATE POLICY organizations_mine ON organizations FOR SELECT USING (
    id IN (SELECT tenant_id FROM organization_members
           WHERE user_id = app_user_id() AND deleted_at IS NULL)
);

ALTER TABLE organization_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_members_tenant ON organization_members
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY organization_members_mine ON organization_members FOR SELECT
    USING (user_id = app_user_id());

ALTER TABLE organization_invites ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_invites_tenant ON organization_invites
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY organization_invites_by_token ON organization_invites FOR SELECT
    USING (token_hash = app_capability('invite_token'));

ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
CREATE POLICY groups_tenant ON groups
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY groups_by_invite ON groups FOR SELECT
    USING (invite_code_hash = app_capability('group_invite'));
CREATE POLICY groups_mine ON groups FOR SELECT USING (
    id IN (SELECT group_id FROM group_members WHERE user_id = app_user_id() AND deleted_at IS NULL)
);

ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY group_members_tenant ON group_members
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY group_members_mine ON group_members FOR SELECT USING (user_id = app_user_id());

-- The outbox: the application appends events of the tenant it works in (or platform events).
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_append ON outbox FOR INSERT
    WITH CHECK (tenant_id IS NULL OR tenant_id = app_tenant_id());
