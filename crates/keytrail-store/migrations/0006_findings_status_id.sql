-- Schema version 6: findings by status in id order.
--
-- A listing filtered by a status (`keytrail serve`'s
-- `/api/v1/findings?status=fixed`, a page of 100 after an id) walks this
-- index in id order and stops at the page's end. Where the status is
-- common (open) the planner walks the primary key and filters instead;
-- where it is rare (revoked, fixed, false_positive) this index spares it
-- reading every finding, or every finding of that status and sorting
-- them, which the (status, severity_rank) index made it do.
CREATE INDEX findings_status_id ON findings (status, id);
