-- Issue 20: while Amazon announces a shop's order changes, status-sync's sweep reads only
-- cancellations from the order mirror and checks unpaid instructions with getOrder, a capped
-- number per sweep, longest unchecked first. When each was last checked:
ALTER TABLE shipping_instructions ADD COLUMN amazon_checked_at timestamptz;

CREATE INDEX shipping_instructions_unpaid_check
    ON shipping_instructions (shop_id, (COALESCE(amazon_checked_at, amazon_last_updated_at, created_at)))
    WHERE source = 'amazon_api' AND payment_status = 'unpaid' AND status IN ('hold', 'awaiting_shipment');
