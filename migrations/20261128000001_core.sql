-- Tenants: one seller account on one region.
CREATE TABLE shops (
    id                       uuid PRIMARY KEY,
    code                     text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name                     text NOT NULL,
    seller_id                text NOT NULL,
    marketplaces             text[] NOT NULL CHECK (cardinality(marketplaces) > 0),
    time_zone                text NOT NULL,
    sp_api_endpoint          text NOT NULL,
    lwa_endpoint             text NOT NULL,
    shipment_strategy        text NOT NULL DEFAULT 'feed' CHECK (shipment_strategy IN ('feed', 'confirm_shipment')),
    lwa_client_id            text NOT NULL,
    -- AES-256-GCM ciphertexts (key version byte + nonce + ciphertext), never plaintext.
    lwa_client_secret_enc    bytea NOT NULL,
    lwa_client_secret_next_enc bytea,
    lwa_refresh_token_enc    bytea NOT NULL,
    auth_status              text NOT NULL DEFAULT 'ok' CHECK (auth_status IN ('ok', 'needs_reauthorization')),
    auth_error               text,
    active                   boolean NOT NULL DEFAULT true,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- WMS: products and stock.
CREATE TABLE products (
    id         uuid PRIMARY KEY,
    shop_id    uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    code       text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop_id, code)
);

CREATE SEQUENCE stock_change_seq;

-- free = on_hand - reserved (確保数) - allocated (引当済み)
CREATE TABLE stock (
    product_id  uuid PRIMARY KEY REFERENCES products(id) ON DELETE CASCADE,
    shop_id     uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    on_hand     integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved    integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    allocated   integer NOT NULL DEFAULT 0 CHECK (allocated >= 0),
    free        integer GENERATED ALWAYS AS (on_hand - reserved - allocated) STORED,
    -- increases on every change of free stock; inventory-sync compares it with what it pushed
    change_seq  bigint NOT NULL DEFAULT nextval('stock_change_seq'),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_shop_seq ON stock (shop_id, change_seq);

CREATE TABLE stock_changes (
    id          bigserial PRIMARY KEY,
    shop_id     uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    product_id  uuid NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('set', 'adjust', 'reserve', 'release', 'allocate', 'ship')),
    delta_on_hand   integer NOT NULL DEFAULT 0,
    delta_reserved  integer NOT NULL DEFAULT 0,
    delta_allocated integer NOT NULL DEFAULT 0,
    reason      text,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_changes_product ON stock_changes (product_id, occurred_at);

-- Delivery methods (配送方法) and their external delivery method (外部連携先配送方法).
CREATE TABLE delivery_methods (
    id                        uuid PRIMARY KEY,
    shop_id                   uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    code                      text NOT NULL,
    name                      text NOT NULL,
    external_delivery_method  text,
    UNIQUE (shop_id, code)
);

-- External delivery method -> Amazon carrier. shop_id NULL = built-in default for every shop.
CREATE TABLE carrier_mappings (
    id                        uuid PRIMARY KEY,
    shop_id                   uuid REFERENCES shops(id) ON DELETE CASCADE,
    external_delivery_method  text NOT NULL,
    carrier_code              text NOT NULL,
    carrier_name              text,
    tracking_pattern          text,
    CHECK (carrier_code <> 'Other' OR carrier_name IS NOT NULL)
);
CREATE UNIQUE INDEX carrier_mappings_key
    ON carrier_mappings (COALESCE(shop_id, '00000000-0000-0000-0000-000000000000'::uuid), external_delivery_method);

-- Conversion rules (変換ロボット): ordered, first match wins.
CREATE TABLE delivery_rules (
    id                  uuid PRIMARY KEY,
    shop_id             uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    position            integer NOT NULL,
    name                text NOT NULL,
    conditions          jsonb NOT NULL DEFAULT '{}'::jsonb,
    delivery_method_id  uuid NOT NULL REFERENCES delivery_methods(id) ON DELETE CASCADE,
    enabled             boolean NOT NULL DEFAULT true,
    UNIQUE (shop_id, position)
);

-- External-product mapping table (外部商品 > 対応表): Amazon seller SKU -> product.
CREATE TABLE external_products (
    id                        uuid PRIMARY KEY,
    shop_id                   uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    sku                       text NOT NULL,
    product_id                uuid NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    handling_days             smallint CHECK (handling_days BETWEEN 0 AND 30),
    handling_days_changed_at  timestamptz,
    pushed_change_seq         bigint,
    pushed_quantity           integer,
    pushed_handling_days      smallint,
    pushed_at                 timestamptz,
    push_state                text NOT NULL DEFAULT 'never' CHECK (push_state IN ('never', 'sent', 'confirmed', 'failed')),
    push_error                text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop_id, sku)
);
CREATE INDEX external_products_product ON external_products (product_id);

-- Shipping instructions (出荷指示) and their lines.
CREATE TABLE shipping_instructions (
    id                     uuid PRIMARY KEY,
    shop_id                uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    source                 text NOT NULL DEFAULT 'amazon_api' CHECK (source IN ('amazon_api', 'manual')),
    amazon_order_id        text,
    marketplace_id         text,
    status                 text NOT NULL DEFAULT 'hold'
                           CHECK (status IN ('hold', 'awaiting_shipment', 'allocated', 'shipped', 'canceled')),
    payment_status         text NOT NULL DEFAULT 'unpaid' CHECK (payment_status IN ('unpaid', 'paid')),
    api_status             text NOT NULL DEFAULT 'awaiting_print'
                           CHECK (api_status IN ('awaiting_print', 'printed', 'shipped', 'failed')),
    api_error              text,
    amazon_status          text,
    amazon_last_updated_at timestamptz,
    ordered_at             timestamptz,
    buyer_name             text,
    buyer_email            text,
    ship_to_name           text,
    ship_to_postal_code    text,
    ship_to_country        text,
    ship_to_state          text,
    ship_to_city           text,
    ship_to_address        text,
    ship_to_phone          text,
    payment_method         text NOT NULL DEFAULT 'placeholder'
                           CHECK (payment_method IN ('placeholder', 'cod', 'convenience_store', 'other')),
    delivery_method_id     uuid REFERENCES delivery_methods(id) ON DELETE SET NULL,
    delivery_method_name   text NOT NULL DEFAULT 'Amazon 仮配送方法',
    ship_service_level     text,
    is_prime               boolean NOT NULL DEFAULT false,
    currency               text,
    order_total            numeric(18, 4),
    tracking_numbers       text[] NOT NULL DEFAULT '{}',
    shipped_on             date,
    shipped_at             timestamptz,
    pii_purged_at          timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop_id, amazon_order_id)
);
CREATE INDEX shipping_instructions_feedback
    ON shipping_instructions (shop_id, status, api_status, shipped_on);

CREATE TABLE instruction_lines (
    id                    uuid PRIMARY KEY,
    instruction_id        uuid NOT NULL REFERENCES shipping_instructions(id) ON DELETE CASCADE,
    shop_id               uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    line_no               integer NOT NULL,
    amazon_order_item_id  text,
    sku                   text NOT NULL,
    product_id            uuid REFERENCES products(id) ON DELETE SET NULL,
    title                 text,
    quantity              integer NOT NULL CHECK (quantity > 0),
    unit_price            numeric(18, 4),
    line_total            numeric(18, 4),
    -- quantity counted in stock.reserved for this line (0 once released, canceled or allocated)
    reserved_quantity     integer NOT NULL DEFAULT 0 CHECK (reserved_quantity >= 0),
    UNIQUE (instruction_id, line_no),
    UNIQUE (instruction_id, amazon_order_item_id)
);
CREATE INDEX instruction_lines_product ON instruction_lines (product_id);
CREATE INDEX instruction_lines_unmapped ON instruction_lines (shop_id) WHERE product_id IS NULL;
