-- Partial shipments in "every package" mode (issue 21 item 2): a shop that sends every package
-- confirms the packages as they leave (some lines today, the rest later).
--
-- A partially shipped instruction stays allocated (引当済み) with the packages that left recorded;
-- the stock of what left has left on-hand and allocated. Each package keeps its own day and its
-- own state at Amazon, so a run sends only the packages not confirmed yet.
ALTER TABLE shipment_packages
    -- The day the package left (the day shipment-feedback sends it on); NULL for packages
    -- recorded before this migration or with `store::packages::record`: the instruction's.
    ADD COLUMN shipped_on date,
    -- awaiting_print: not sent; printed: in a feed Amazon accepted, result pending;
    -- shipped: confirmed by Amazon; failed: refused by Amazon (api_error says why).
    ADD COLUMN api_status text NOT NULL DEFAULT 'awaiting_print'
        CHECK (api_status IN ('awaiting_print', 'printed', 'shipped', 'failed')),
    ADD COLUMN api_error text;

UPDATE shipment_packages sp
SET shipped_on = si.shipped_on,
    api_status = si.api_status
FROM shipping_instructions si
WHERE si.id = sp.instruction_id;

-- The instruction's API status after Amazon confirmed some of its packages while the rest of the
-- order has not left or not been sent: 一部出荷済み (partially_shipped).
ALTER TABLE shipping_instructions DROP CONSTRAINT shipping_instructions_api_status_check;
ALTER TABLE shipping_instructions ADD CONSTRAINT shipping_instructions_api_status_check
    CHECK (api_status IN ('awaiting_print', 'printed', 'shipped', 'failed', 'partially_shipped'));

-- The package a shipment message carried (every-package mode); NULL: the whole order.
ALTER TABLE feed_messages ADD COLUMN package_no smallint;
