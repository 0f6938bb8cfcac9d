-- Amazon's notifications received from SQS (issue 19): one row per NotificationId, so a
-- notification delivered twice (SQS and Amazon deliver at least once) is acted on once, and a
-- record of what became of each: queued as work, ignored (not ours) or poison (unreadable).
-- Holds ids only (order and feed ids), never buyer data.
CREATE TABLE notifications_received (
    notification_id   text PRIMARY KEY,
    notification_type text NOT NULL,
    shop_id           uuid REFERENCES shops(id) ON DELETE SET NULL,
    -- The Amazon order id (ORDER_CHANGE) or feed id (FEED_PROCESSING_FINISHED).
    subject           text,
    outcome           text NOT NULL CHECK (outcome IN ('queued', 'ignored', 'poison')),
    reason            text,
    event_time        timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_received_shop ON notifications_received (shop_id, received_at DESC);
