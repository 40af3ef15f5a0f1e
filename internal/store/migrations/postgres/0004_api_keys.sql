-- API keys. Only a key's SHA-256 is kept: the secret is shown once, when it is created.
CREATE TABLE api_keys (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT        NOT NULL,
    prefix       TEXT        NOT NULL, -- the secret's start, to tell keys apart in listings
    key_hash     BYTEA       NOT NULL CHECK (octet_length(key_hash) = 32),
    scopes       TEXT        NOT NULL, -- comma-separated, weakest first: read,write,admin
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ, -- updated at most once a minute
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- Authentication finds a key by its hash, and no two keys share one.
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_prefix ON api_keys (prefix);
