-- Why an instruction is on hold (保留). Seed 2: payment makes the instruction 入金済み (payment
-- status); only a hold the import placed because the order was unpaid is released by it. A hold
-- an operator placed, or one of any other reason, stays when the order is paid.
ALTER TABLE shipping_instructions
    ADD COLUMN hold_reason text CHECK (hold_reason IN ('unpaid', 'operator', 'other'));

UPDATE shipping_instructions
   SET hold_reason = CASE WHEN payment_status = 'unpaid' AND source = 'amazon_api' THEN 'unpaid' ELSE 'other' END
 WHERE status = 'hold';
