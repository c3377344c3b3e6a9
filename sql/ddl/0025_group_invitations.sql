-- 0025: invitations to a group, addressed to one person (an e-mail address or a Telegram
-- username) and delivered like an organization's (migration 0022): an organization_invites row
-- with the group and no role. Accepting it makes the account a member of the group, not of the
-- organization. Plain PostgreSQL.
ALTER TABLE organization_invites ADD COLUMN group_id uuid REFERENCES groups (id);
ALTER TABLE organization_invites ALTER COLUMN role DROP NOT NULL;
ALTER TABLE organization_invites ADD CONSTRAINT ck_organization_invites_kind
    CHECK ((group_id IS NULL) = (role IS NOT NULL));
CREATE INDEX ix_organization_invites_group_id ON organization_invites (group_id)
    WHERE group_id IS NOT NULL;
