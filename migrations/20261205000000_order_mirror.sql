-- The order mirror (issue 20): one `searchOrders` poll on lastUpdatedAfter per shop writes the
-- latest Amazon state of each changed order here, and both order-ingest (differential) and
-- status-sync (changes) read it, instead of each spending the shop's searchOrders quota on the
-- same changes. `payload` is the Amazon order (JSON) sealed with the connector's keyring (it
-- holds buyer and ship-to data): cleared once every reader that needs it has applied that
-- version, and by the daily PII purge after the retention period in any case.
CREATE TABLE order_mirror (
    shop_id            uuid        NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    amazon_order_id    text        NOT NULL,
    -- Amazon's lastUpdatedTime of the state held: the version both readers compare with.
    last_updated_time  timestamptz NOT NULL,
    -- Merchant-fulfilled PENDING or UNSHIPPED: order-ingest imports it.
    importable         boolean     NOT NULL,
    payload            bytea,
    polled_at          timestamptz NOT NULL DEFAULT now(),
    -- The version each reader applied (NULL: none yet).
    ingest_version     timestamptz,
    sync_version       timestamptz,
    PRIMARY KEY (shop_id, amazon_order_id)
);

CREATE INDEX order_mirror_ingest_pending ON order_mirror (shop_id, amazon_order_id)
    WHERE importable AND ingest_version IS DISTINCT FROM last_updated_time;
CREATE INDEX order_mirror_sync_pending ON order_mirror (shop_id, amazon_order_id)
    WHERE sync_version IS DISTINCT FROM last_updated_time;

-- Where a shop's poll is: the next poll asks for lastUpdatedAfter = watermark − overlap; a poll
-- in progress keeps its lower bound and next page token (a process killed mid-page resumes
-- from the last committed page). The row is locked while a page is fetched and written, so
-- two processes never fetch the same page.
CREATE TABLE order_mirror_cursors (
    shop_id     uuid        PRIMARY KEY REFERENCES shops (id) ON DELETE CASCADE,
    watermark   timestamptz NOT NULL,
    poll_after  timestamptz,
    next_token  text,
    polled_at   timestamptz,
    pages       bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
