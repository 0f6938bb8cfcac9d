-- Run ledger: one row per action run (or skipped trigger).
CREATE TABLE action_runs (
    id             uuid PRIMARY KEY,
    shop_id        uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    action         text NOT NULL,
    mode           text,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'waiting', 'succeeded', 'failed', 'skipped', 'rejected')),
    command_id     uuid,
    requested_by   text,
    window_from    timestamptz,
    window_to      timestamptz,
    -- next run starts here (Amazon's createdBefore/lastUpdatedBefore minus overlap)
    watermark      timestamptz,
    cursor         jsonb,
    counts         jsonb NOT NULL DEFAULT '{}'::jsonb,
    amazon_calls   integer NOT NULL DEFAULT 0,
    error          text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX action_runs_shop_action ON action_runs (shop_id, action, started_at DESC);

-- One active run per (shop, action): a lease that expires if its holder dies.
CREATE TABLE action_leases (
    shop_id     uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    action      text NOT NULL,
    run_id      uuid NOT NULL,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (shop_id, action)
);

-- Feeds sent to Amazon, recorded before the call (intent) and updated after.
CREATE TABLE feed_submissions (
    id                  uuid PRIMARY KEY,
    shop_id             uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    run_id              uuid REFERENCES action_runs(id) ON DELETE SET NULL,
    feed_type           text NOT NULL,
    marketplace_ids     text[] NOT NULL,
    state               text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'in_flight', 'submitted', 'done', 'fatal', 'cancelled', 'failed')),
    content_sha256      text,
    feed_document_id    text,
    amazon_feed_id      text,
    processing_status   text,
    result_document_id  text,
    poll_attempts       integer NOT NULL DEFAULT 0,
    next_poll_at        timestamptz,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    submitted_at        timestamptz,
    finished_at         timestamptz
);
CREATE INDEX feed_submissions_open ON feed_submissions (next_poll_at) WHERE state IN ('submitted', 'in_flight');
CREATE UNIQUE INDEX feed_submissions_amazon ON feed_submissions (shop_id, amazon_feed_id) WHERE amazon_feed_id IS NOT NULL;

CREATE TABLE feed_messages (
    feed_submission_id   uuid NOT NULL REFERENCES feed_submissions(id) ON DELETE CASCADE,
    message_id           bigint NOT NULL,
    instruction_id       uuid REFERENCES shipping_instructions(id) ON DELETE SET NULL,
    external_product_id  uuid REFERENCES external_products(id) ON DELETE SET NULL,
    amazon_order_id      text,
    sku                  text,
    quantity             integer,
    handling_days        smallint,
    change_seq           bigint,
    result               text NOT NULL DEFAULT 'pending' CHECK (result IN ('pending', 'success', 'warning', 'error')),
    result_code          text,
    result_message       text,
    PRIMARY KEY (feed_submission_id, message_id)
);
CREATE INDEX feed_messages_instruction ON feed_messages (instruction_id);

-- APIログ: what happened, per shop and action, readable by an operator. Never PII.
CREATE TABLE api_log (
    id               bigserial PRIMARY KEY,
    shop_id          uuid REFERENCES shops(id) ON DELETE CASCADE,
    run_id           uuid,
    action           text NOT NULL,
    level            text NOT NULL CHECK (level IN ('info', 'warning', 'error', 'attention')),
    amazon_order_id  text,
    sku              text,
    code             text,
    message          text NOT NULL,
    details          jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_log_shop_time ON api_log (shop_id, created_at DESC);
CREATE INDEX api_log_order ON api_log (amazon_order_id) WHERE amazon_order_id IS NOT NULL;

-- Transactional outbox: written in the same transaction as the effect, relayed with confirms.
CREATE TABLE outbox (
    id             uuid PRIMARY KEY,          -- the AMQP message_id
    exchange       text NOT NULL,
    routing_key    text NOT NULL,
    payload        jsonb NOT NULL,
    headers        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    not_before     timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    claimed_until  timestamptz,
    sent_at        timestamptz
);
CREATE INDEX outbox_due ON outbox (not_before) WHERE sent_at IS NULL;

-- Inbox: message ids a consumer has applied, recorded in the effect's transaction.
CREATE TABLE inbox (
    consumer     text NOT NULL,
    message_id   uuid NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Amazon quota shared by every replica: one token bucket per (seller, operation).
CREATE TABLE rate_buckets (
    seller_key   text NOT NULL,
    operation    text NOT NULL,
    rate         double precision NOT NULL CHECK (rate > 0),
    burst        double precision NOT NULL CHECK (burst >= 1),
    tokens       double precision NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (seller_key, operation)
);
