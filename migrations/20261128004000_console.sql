-- Operator web console (crate console): operators, the shops each one sees, and sessions.

CREATE TABLE console_users (
    id             uuid PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    display_name   text NOT NULL,
    -- PHC string (argon2id), never the password.
    password_hash  text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Which shops an operator sees (and may trigger actions for).
CREATE TABLE console_user_shops (
    user_id  uuid NOT NULL REFERENCES console_users(id) ON DELETE CASCADE,
    shop_id  uuid NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, shop_id)
);
CREATE INDEX console_user_shops_shop ON console_user_shops (shop_id);

-- Signed-in sessions: the cookie holds a random token, the table only its SHA-256.
CREATE TABLE console_sessions (
    token_sha256  bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES console_users(id) ON DELETE CASCADE,
    -- echoed in every form, checked on every POST
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
