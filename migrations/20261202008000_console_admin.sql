-- Console administrators: operators who may also see and replay the dead-letter queues
-- (per service, so across every shop). Set with `console user add --admin`.
ALTER TABLE console_users ADD COLUMN admin boolean NOT NULL DEFAULT false;
