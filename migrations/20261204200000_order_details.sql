-- Issue 21 item 4: the order details a warehouse packs and ships by.
--
-- In clear (not personal): Amazon's programs (Prime is `is_prime`, older), the ship-by and
-- deliver-by windows (`fulfillment.shipByWindow` / `deliverByWindow`), the delivery window the
-- buyer chose (the items' `scheduledDeliveryWindow`), whether any item is a gift, and per line
-- the gift wrap level and the line's own COD fee.
--
-- Personal (sealed in `pii_enc` with the buyer and ship-to, purged with them): the business
-- buyer's company name and purchase order number, the delivery preference (drop-off place,
-- address instructions, preferred hours) and the gift messages. No column here holds them.
ALTER TABLE shipping_instructions
    ADD COLUMN is_business             boolean NOT NULL DEFAULT false,
    ADD COLUMN is_premium              boolean NOT NULL DEFAULT false,
    ADD COLUMN is_gift                 boolean NOT NULL DEFAULT false,
    ADD COLUMN earliest_ship_at        timestamptz,
    ADD COLUMN latest_ship_at          timestamptz,
    ADD COLUMN earliest_delivery_at    timestamptz,
    ADD COLUMN latest_delivery_at      timestamptz,
    ADD COLUMN scheduled_delivery_from timestamptz,
    ADD COLUMN scheduled_delivery_to   timestamptz,
    -- when the "ship-by approaching" attention entry was written (once per instruction)
    ADD COLUMN ship_by_noticed_at      timestamptz;

-- Open instructions by ship-by time (the "ship-by approaching" attention check).
CREATE INDEX shipping_instructions_open_ship_by
    ON shipping_instructions (latest_ship_at)
    WHERE status IN ('hold', 'awaiting_shipment', 'allocated') AND latest_ship_at IS NOT NULL;

ALTER TABLE instruction_lines
    ADD COLUMN is_gift         boolean NOT NULL DEFAULT false,
    ADD COLUMN gift_wrap_level text,
    ADD COLUMN cod_fee         numeric(18, 4);
