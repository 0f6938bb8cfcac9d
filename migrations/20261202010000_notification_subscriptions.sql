-- A shop's subscriptions to Amazon's notifications (issue 19): which notification types Amazon
-- delivers for it and to which destination. While a shop has its ORDER_CHANGE subscription,
-- status-sync's differential poll is the sweep (a low cadence: the schedule in effect before
-- subscribing is kept here and restored on unsubscribe), and a change the sweep finds that no
-- notification announced is an attention entry.
CREATE TABLE notification_subscriptions (
    shop_id           uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    notification_type text NOT NULL
        CHECK (notification_type IN ('ORDER_CHANGE', 'FEED_PROCESSING_FINISHED')),
    subscription_id   text NOT NULL,
    destination_id    text NOT NULL,
    -- status-sync's default cadence before subscribing (ORDER_CHANGE only).
    previous_cron     text,
    subscribed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, notification_type)
);
-- Finding a shop's ORDER_CHANGE notifications by order id (the sweep's "was it announced?").
CREATE INDEX notifications_received_subject ON notifications_received (shop_id, subject);
