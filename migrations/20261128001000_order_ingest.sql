-- order-ingest / status-sync: find the run a (redelivered) command started.
CREATE INDEX action_runs_command ON action_runs (command_id) WHERE command_id IS NOT NULL;
-- status-sync reconcile: open API-imported instructions of a shop.
CREATE INDEX shipping_instructions_open ON shipping_instructions (shop_id, status) WHERE source = 'amazon_api';
