-- 0024: e-mail verification. When the account confirmed its current address by the e-mailed link
-- (domain/identity/email_verification.py); cleared by a change of address. A paid registration
-- needs it (or no e-mail at all). Accounts made before start unconfirmed. Plain PostgreSQL.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
