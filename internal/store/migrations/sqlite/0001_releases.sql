-- Releases and their timelines. Times are INTEGER microseconds since the Unix epoch, UTC,
-- so they sort and compare exactly.
CREATE TABLE releases (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    application    TEXT    NOT NULL,
    environment    TEXT    NOT NULL,
    revision       TEXT    NOT NULL,
    commit_message TEXT    NOT NULL DEFAULT '',
    author         TEXT    NOT NULL DEFAULT '',
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    result         TEXT    NOT NULL CHECK (result IN ('pending', 'succeeded', 'failed'))
);

-- Newest first, overall and per application/environment; keyset pagination on (started_at, id).
CREATE INDEX releases_started ON releases (started_at DESC, id DESC);
CREATE INDEX releases_app_env_started ON releases (application, environment, started_at DESC, id DESC);
CREATE INDEX releases_revision ON releases (revision);

CREATE TABLE release_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id  INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    type        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    summary     TEXT    NOT NULL,
    attributes  TEXT -- JSON object; NULL when there are none
);

CREATE INDEX release_events_timeline ON release_events (release_id, occurred_at, id);
