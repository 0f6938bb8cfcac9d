-- Failed console sign-ins (never the password): after 5 for a user name, or from one address,
-- within 15 minutes, further attempts wait with a growing delay.
CREATE TABLE sign_in_failures (
    id       bigserial PRIMARY KEY,
    username text NOT NULL,
    address  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_username ON sign_in_failures (username, at);
CREATE INDEX sign_in_failures_address ON sign_in_failures (address, at);
