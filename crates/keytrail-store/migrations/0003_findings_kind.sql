-- Schema version 3: findings by kind.
--
-- `keytrail serve` lists one kind at a time (secrets, posture, alerts,
-- exposure, inventory) and a credential's page looks up the exposure
-- records; without this index each such query read every finding
-- (38 ms a credential page with 100,000 findings on SQLite).
CREATE INDEX findings_kind ON findings (kind, id);
