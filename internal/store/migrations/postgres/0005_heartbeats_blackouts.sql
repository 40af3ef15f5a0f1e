-- Heartbeats: the latest sign of life of each sender (origin, per customer), and whether the
-- alert for its silence has been raised. Blackouts: maintenance windows. doc holds the whole
-- object as the API returns it; the columns are what queries select on.
CREATE TABLE heartbeats (
    id           TEXT        PRIMARY KEY,
    origin       TEXT        NOT NULL,
    customer     TEXT        NOT NULL DEFAULT '',
    receive_time TIMESTAMPTZ NOT NULL,
    expire_at    TIMESTAMPTZ NOT NULL, -- receive_time + timeout
    alerted      BOOLEAN     NOT NULL DEFAULT FALSE, -- its expiry was raised and not yet cleared
    doc          JSONB       NOT NULL
);

-- One heartbeat per sender; a new one replaces it.
CREATE UNIQUE INDEX heartbeats_origin ON heartbeats (origin, customer);
-- Housekeeping looks for the expired ones it has not raised yet.
CREATE INDEX heartbeats_expire ON heartbeats (expire_at) WHERE NOT alerted;

CREATE TABLE blackouts (
    id          TEXT        PRIMARY KEY,
    environment TEXT        NOT NULL,
    start_time  TIMESTAMPTZ NOT NULL,
    end_time    TIMESTAMPTZ NOT NULL,
    create_time TIMESTAMPTZ NOT NULL,
    doc         JSONB       NOT NULL
);

-- The active ones are those not yet ended that have started.
CREATE INDEX blackouts_end ON blackouts (end_time, start_time);
