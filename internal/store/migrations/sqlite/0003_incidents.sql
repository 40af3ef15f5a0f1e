-- Incidents: alerts as Alerta models them. The columns are what lists filter and sort on;
-- doc holds the whole alert (history included) as the API returns it, as JSON. Times are
-- INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE alerts (
    id                TEXT        PRIMARY KEY,
    environment       TEXT        NOT NULL,
    resource          TEXT        NOT NULL,
    event             TEXT        NOT NULL,
    customer          TEXT        NOT NULL DEFAULT '',
    severity          TEXT        NOT NULL,
    status            TEXT        NOT NULL,
    services          TEXT        NOT NULL DEFAULT '', -- |a|b|, for matching one service
    grp               TEXT        NOT NULL DEFAULT '',
    text              TEXT        NOT NULL DEFAULT '',
    duplicate_count   INTEGER     NOT NULL DEFAULT 0,
    create_time       INTEGER     NOT NULL,
    last_receive_time INTEGER     NOT NULL,
    update_time       INTEGER     NOT NULL,
    timeout           INTEGER     NOT NULL DEFAULT 0,
    -- When housekeeping acts on it: expire_at, when an open alert's timeout passes without a
    -- repeat; wake_at, when an ack or a shelve with a timeout runs out. NULL: never.
    expire_at         INTEGER,
    wake_at           INTEGER,
    release_id        INTEGER     REFERENCES releases (id) ON DELETE SET NULL,
    doc               TEXT        NOT NULL
);

-- Candidates of de-duplication and correlation: one environment and resource.
CREATE INDEX alerts_identity ON alerts (environment, resource, customer);
CREATE INDEX alerts_last_receive ON alerts (last_receive_time DESC, id);
CREATE INDEX alerts_status ON alerts (status, last_receive_time DESC);
CREATE INDEX alerts_release ON alerts (release_id);
CREATE INDEX alerts_expire ON alerts (expire_at) WHERE expire_at IS NOT NULL;
CREATE INDEX alerts_wake ON alerts (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX alerts_closed ON alerts (update_time) WHERE status IN ('closed', 'expired');
