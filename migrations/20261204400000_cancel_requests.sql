-- Buyer cancellation requests (issue 21 item 1). A buyer asked to cancel before shipment: an
-- instruction not allocated yet is held (hold_reason buyer_cancel_request), an allocated one is
-- flagged; an operator accepts (the instruction is cancelled, its stock released, and Amazon is
-- told with the order acknowledgement feed: cancel_ack pending → sent → done | failed) or
-- declines (it ships as usual).
ALTER TABLE shipping_instructions DROP CONSTRAINT shipping_instructions_hold_reason_check;
ALTER TABLE shipping_instructions ADD CONSTRAINT shipping_instructions_hold_reason_check
    CHECK (hold_reason IN ('unpaid', 'operator', 'other', 'buyer_cancel_request'));

ALTER TABLE shipping_instructions
    ADD COLUMN cancel_requested_at       timestamptz,
    ADD COLUMN cancel_request_reason     text,
    ADD COLUMN cancel_request_decision   text CHECK (cancel_request_decision IN ('accepted', 'declined')),
    ADD COLUMN cancel_request_decided_by text,
    ADD COLUMN cancel_ack                text CHECK (cancel_ack IN ('pending', 'sent', 'done', 'failed'));

CREATE INDEX shipping_instructions_cancel_ack ON shipping_instructions (shop_id)
    WHERE cancel_ack = 'pending';
