-- Local users of the panel and their browser sessions. Only a password's bcrypt hash and a
-- session token's SHA-256 are kept. Times are INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

-- Deleting a user ends its sessions.
CREATE TABLE sessions (
    token_hash   BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL, -- absolute: activity does not extend a session
    last_seen_at INTEGER NOT NULL  -- updated at most once a minute
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
