-- Buyer and ship-to data encrypted at rest (Amazon DPP): one AES-256-GCM blob per instruction,
-- sealed by the application with the connector's keyring (CONNECTOR_ENCRYPTION_KEYS), bound to
-- the shop and the instruction as associated data. Layout: key version (1 byte) ‖ nonce ‖
-- ciphertext of a JSON object with the fields of store::pii::PersonalData.
--
-- The plaintext columns (buyer_name, buyer_email, ship_to_name, ship_to_postal_code,
-- ship_to_state, ship_to_city, ship_to_address, ship_to_phone) are no longer written; rows
-- written before this migration are sealed and their plaintext cleared by `ctl keys rotate`
-- (store::pii::reseal), which also re-encrypts blobs under an older key version.
ALTER TABLE shipping_instructions ADD COLUMN pii_enc bytea;

COMMENT ON COLUMN shipping_instructions.pii_enc IS
  'buyer and ship-to PII, AES-256-GCM sealed by the application (store::pii); NULL once purged';
