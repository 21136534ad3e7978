-- Schema version 7: who revoked an API token (`keytrail token revoke`),
-- beside when (`revoked_at`, there since version 2).
ALTER TABLE api_tokens ADD COLUMN revoked_by TEXT;
