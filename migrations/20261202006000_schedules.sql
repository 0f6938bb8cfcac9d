-- 自動実行 (schedules): when each action runs for each shop, kept here instead of one set of
-- CronJobs per shop. One scheduler (`ctl scheduler tick`, a CronJob every minute) publishes a
-- trigger for every due entry of every active shop (store::schedules::claim_due; the rules in
-- domain::schedule). Changed with `ctl schedule` or the console (自動実行), no deploy.
CREATE TABLE schedules (
    shop_id         uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    action          text NOT NULL CHECK (action IN ('order-ingest', 'status-sync', 'shipment-feedback',
                                                    'inventory-sync', 'feed-poller')),
    -- An action may have several entries: shipment-feedback has 'default' (hourly) and
    -- 'end-of-day' (23:55, the day's last run).
    entry           text NOT NULL DEFAULT 'default' CHECK (entry ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    -- Five-field cron expression read in the shop's time zone (validated by domain::schedule).
    cron            text NOT NULL CHECK (cron <> ''),
    enabled         boolean NOT NULL DEFAULT true,
    -- The latest slot the scheduler has dealt with (fired or passed over); only later slots fire.
    -- Set to the time of a change, so a new or changed entry starts with its next slot.
    last_slot       timestamptz NOT NULL DEFAULT now(),
    -- The latest slot a trigger was published for, and when.
    last_fired_slot timestamptz,
    last_fired_at   timestamptz,
    updated_by      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, action, entry)
);

-- Every existing shop gets the cadences of the trigger CronJobs this replaces
-- (domain::schedule::DEFAULTS; new shops get them from store::shops::insert).
INSERT INTO schedules (shop_id, action, entry, cron, updated_by)
SELECT s.id, d.action, d.entry, d.cron, 'migration'
FROM shops s
CROSS JOIN (VALUES ('order-ingest', 'default', '*/15 * * * *'),
                   ('status-sync', 'default', '*/10 * * * *'),
                   ('shipment-feedback', 'default', '0 * * * *'),
                   ('shipment-feedback', 'end-of-day', '55 23 * * *'),
                   ('inventory-sync', 'default', '5-59/15 * * * *'),
                   ('feed-poller', 'default', '*/5 * * * *')) AS d (action, entry, cron);
