-- A feed Amazon reports DONE without a result document is not all success: feed-poller asks
-- again with backoff (counted here) and, if the report stays missing, leaves its messages
-- unconfirmed with an attention entry.
ALTER TABLE feed_submissions ADD COLUMN missing_report_polls integer NOT NULL DEFAULT 0;
