-- Issue 20, polling while Amazon announces a shop's order changes. status-sync's sweep reads only
-- cancellations from the order mirror and checks unpaid instructions with getOrder, a capped
-- number per sweep, longest unchecked first. When each was last checked:
ALTER TABLE shipping_instructions ADD COLUMN amazon_checked_at timestamptz;

CREATE INDEX shipping_instructions_unpaid_check
    ON shipping_instructions (shop_id, (COALESCE(amazon_checked_at, amazon_last_updated_at, created_at)))
    WHERE source = 'amazon_api' AND payment_status = 'unpaid' AND status IN ('hold', 'awaiting_shipment');

-- The fulfillment statuses of the mirror's poll in progress: its next page is asked for with
-- them whoever continues it (Amazon refuses a page token with other filters), while the
-- sweep's polls ask for fewer statuses than the full poll (cancellations only).
ALTER TABLE order_mirror_cursors ADD COLUMN poll_statuses text[];
