-- Local users of the panel and their browser sessions. Only a password's bcrypt hash and a
-- session token's SHA-256 are kept.
CREATE TABLE users (
    id            BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT        NOT NULL UNIQUE,
    role          TEXT        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    disabled_at   TIMESTAMPTZ
);

-- Deleting a user ends its sessions.
CREATE TABLE sessions (
    token_hash   BYTEA       NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL, -- absolute: activity does not extend a session
    last_seen_at TIMESTAMPTZ NOT NULL  -- updated at most once a minute
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
