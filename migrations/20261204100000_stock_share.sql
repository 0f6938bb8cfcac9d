-- Stock shared by several shops (issue 21 item 3). Japan, Australia and Singapore are separate
-- seller accounts, so SKUs of several shops may map one product. Per mapping (shop, SKU →
-- product): a share of the product's free stock in percent (NULL: not shared, the whole free
-- stock is sent, the seed's behaviour) and a safety stock kept back. The rule that turns them
-- into quantities is `domain::stock::allocate`.
ALTER TABLE external_products
    ADD COLUMN share_percent smallint CHECK (share_percent BETWEEN 1 AND 100),
    ADD COLUMN safety_stock integer NOT NULL DEFAULT 0 CHECK (safety_stock BETWEEN 0 AND 1000000);
