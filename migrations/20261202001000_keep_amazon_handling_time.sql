-- Seed 4: an external product without 出荷作業日数 sets Amazon's handling time back to its
-- default. A shop may keep Amazon's own value instead (the behaviour before issue 17).
ALTER TABLE shops ADD COLUMN keep_amazon_handling_time boolean NOT NULL DEFAULT false;
