-- Every package, per shop (issue 21 item 2). The seed sends only the first tracking number
-- (「先頭の1つのみを返します」): that stays the default (send_every_package false). A shop switched
-- on sends each package the warehouse recorded as its own shipment confirmation, with its own
-- carrier, tracking number and items.
ALTER TABLE shops ADD COLUMN send_every_package boolean NOT NULL DEFAULT false;

-- The packages of a shipped instruction as the warehouse packed them. The instruction's
-- tracking_numbers hold the same numbers in package order (the first is package 1's).
CREATE TABLE shipment_packages (
    instruction_id            uuid NOT NULL REFERENCES shipping_instructions(id) ON DELETE CASCADE,
    package_no                smallint NOT NULL CHECK (package_no > 0),
    tracking_number           text NOT NULL CHECK (tracking_number <> ''),
    -- Its own carrier (external delivery method); NULL: the instruction's delivery method's.
    external_delivery_method  text,
    -- [{"order_item_id": "…", "quantity": n}, …]
    items                     jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array'),
    created_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instruction_id, package_no)
);
