-- Shipping charges and the cash-on-delivery fee of an Amazon order, kept on the instruction as
-- their own amounts (Amazon's proceeds categories SHIPPING and COD_FEE). A line's total
-- (合計金額(明細)) is the item's own price × quantity (category ITEM), never Amazon's
-- proceedsTotal, which includes them. NULL while Amazon shows no prices (Pending).
ALTER TABLE shipping_instructions
    ADD COLUMN shipping_total numeric(18, 4),
    ADD COLUMN cod_fee        numeric(18, 4);

-- Lines imported earlier took proceedsTotal: put back price × quantity.
UPDATE instruction_lines l
   SET line_total = l.unit_price * l.quantity
  FROM shipping_instructions si
 WHERE si.id = l.instruction_id AND si.source = 'amazon_api'
   AND l.unit_price IS NOT NULL AND l.line_total IS DISTINCT FROM l.unit_price * l.quantity;
