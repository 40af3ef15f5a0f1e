-- Releases and their timelines.
CREATE TABLE releases (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application    TEXT        NOT NULL,
    environment    TEXT        NOT NULL,
    revision       TEXT        NOT NULL,
    commit_message TEXT        NOT NULL DEFAULT '',
    author         TEXT        NOT NULL DEFAULT '',
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    result         TEXT        NOT NULL CHECK (result IN ('pending', 'succeeded', 'failed'))
);

-- Newest first, overall and per application/environment; keyset pagination on (started_at, id).
CREATE INDEX releases_started ON releases (started_at DESC, id DESC);
CREATE INDEX releases_app_env_started ON releases (application, environment, started_at DESC, id DESC);
CREATE INDEX releases_revision ON releases (revision);

CREATE TABLE release_events (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id  BIGINT      NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    type        TEXT        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    summary     TEXT        NOT NULL,
    attributes  JSONB -- NULL when there are none
);

CREATE INDEX release_events_timeline ON release_events (release_id, occurred_at, id);
