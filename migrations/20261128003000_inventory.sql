-- inventory-sync (issue 8).

-- Which run last pushed the SKU: feed results only change the state of the SKU when they
-- belong to its latest push (a late result of an older feed never overwrites a newer push).
ALTER TABLE external_products ADD COLUMN pushed_run_id uuid;

-- Every change of free stock (on hand − reserved − allocated) takes a new change_seq, whoever
-- makes it (order-ingest reserving, status-sync releasing, an operator adjusting): inventory-sync
-- pushes SKUs whose stock.change_seq is above what it last pushed. A change that leaves free
-- stock unchanged (allocation moves reserved to allocated, shipping removes allocated and on
-- hand) does not need a push and keeps its change_seq unless the writer bumps it itself.
CREATE FUNCTION stock_bump_change_seq() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.on_hand - NEW.reserved - NEW.allocated) IS DISTINCT FROM (OLD.on_hand - OLD.reserved - OLD.allocated) THEN
        NEW.change_seq := nextval('stock_change_seq');
        NEW.changed_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER stock_bump_change_seq
    BEFORE UPDATE OF on_hand, reserved, allocated ON stock
    FOR EACH ROW EXECUTE FUNCTION stock_bump_change_seq();

-- SKUs still to push or retry, and results by SKU.
CREATE INDEX external_products_push_state ON external_products (shop_id, push_state);
CREATE INDEX feed_messages_external_product ON feed_messages (external_product_id) WHERE external_product_id IS NOT NULL;
