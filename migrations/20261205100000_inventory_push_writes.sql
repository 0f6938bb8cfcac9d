-- inventory-sync's 100,000-SKU push (issue 20): the run writes one feed_messages row per SKU
-- (the intent) and updates every pushed SKU's push state in external_products (Amazon accepted
-- the feed). Measured on 25,000-message feeds, most of that time was spent outside the rows
-- themselves: a foreign-key check per message against external_products, index entries nothing
-- reads, and push-state updates that rewrote all four indexes of external_products.

-- A message keeps the id of the SKU it was sent for, whether or not the SKU is still mapped (a
-- result for an unmapped SKU changes no SKU: the join finds none). Checking it cost a lookup and
-- a row lock per message; the index only served that constraint.
ALTER TABLE feed_messages DROP CONSTRAINT feed_messages_external_product_id_fkey;
DROP INDEX feed_messages_external_product;

-- Inventory messages have no instruction: index the shipment messages only.
DROP INDEX feed_messages_instruction;
CREATE INDEX feed_messages_instruction ON feed_messages (instruction_id) WHERE instruction_id IS NOT NULL;

-- The push state is no longer indexed (the targets and the push-state counts read every SKU of
-- the shop anyway), so marking SKUs sent, confirmed or failed changes no indexed column, and with
-- room left on each page (a run updates every SKU of a page at once) the update is a heap-only
-- tuple update: no index entry is written. Existing pages get that room as their rows move.
DROP INDEX external_products_push_state;
ALTER TABLE external_products SET (fillfactor = 50);
