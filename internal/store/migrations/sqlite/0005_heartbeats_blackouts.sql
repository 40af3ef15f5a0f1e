-- Heartbeats: the latest sign of life of each sender (origin, per customer), and whether the
-- alert for its silence has been raised. Blackouts: maintenance windows. doc holds the whole
-- object as the API returns it, as JSON; the columns are what queries select on. Times are
-- INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE heartbeats (
    id           TEXT    PRIMARY KEY,
    origin       TEXT    NOT NULL,
    customer     TEXT    NOT NULL DEFAULT '',
    receive_time INTEGER NOT NULL,
    expire_at    INTEGER NOT NULL, -- receive_time + timeout
    alerted      BOOLEAN NOT NULL DEFAULT FALSE, -- its expiry was raised and not yet cleared
    doc          TEXT    NOT NULL
);

-- One heartbeat per sender; a new one replaces it.
CREATE UNIQUE INDEX heartbeats_origin ON heartbeats (origin, customer);
-- Housekeeping looks for the expired ones it has not raised yet.
CREATE INDEX heartbeats_expire ON heartbeats (expire_at) WHERE NOT alerted;

CREATE TABLE blackouts (
    id          TEXT    PRIMARY KEY,
    environment TEXT    NOT NULL,
    start_time  INTEGER NOT NULL,
    end_time    INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    doc         TEXT    NOT NULL
);

-- The active ones are those not yet ended that have started.
CREATE INDEX blackouts_end ON blackouts (end_time, start_time);
