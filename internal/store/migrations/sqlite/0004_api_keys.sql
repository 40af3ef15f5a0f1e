-- API keys. Only a key's SHA-256 is kept: the secret is shown once, when it is created.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL, -- the secret's start, to tell keys apart in listings
    key_hash     BLOB    NOT NULL CHECK (length(key_hash) = 32),
    scopes       TEXT    NOT NULL, -- comma-separated, weakest first: read,write,admin
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER, -- updated at most once a minute
    expires_at   INTEGER,
    revoked_at   INTEGER
);

-- Authentication finds a key by its hash, and no two keys share one.
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_prefix ON api_keys (prefix);
