-- The error tracker: projects and their DSN keys, issues (events grouped by fingerprint) and
-- their events. The columns are what lists filter and sort on; doc holds the whole issue or
-- event as JSON, as the API returns it: TEXT, not JSONB, which refuses the \u0000 escape a
-- string holding a NUL character is written with.
CREATE TABLE projects (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT        NOT NULL UNIQUE,
    rate_limit INTEGER     NOT NULL DEFAULT 0, -- events per minute; 0: the server's default
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE project_keys (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id BIGINT      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    public     TEXT        NOT NULL UNIQUE, -- 32 lowercase hex digits, the DSN's user part
    label      TEXT        NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX project_keys_project ON project_keys (project_id, id);

CREATE TABLE issues (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     BIGINT      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    fingerprint    TEXT        NOT NULL,
    status         TEXT        NOT NULL,
    level          TEXT        NOT NULL,
    title          TEXT        NOT NULL,
    culprit        TEXT        NOT NULL DEFAULT '',
    first_seen     TIMESTAMPTZ NOT NULL,
    last_seen      TIMESTAMPTZ NOT NULL,
    count          BIGINT      NOT NULL,
    users_affected BIGINT      NOT NULL DEFAULT 0,
    first_release  TEXT        NOT NULL DEFAULT '',
    last_release   TEXT        NOT NULL DEFAULT '',
    resolved_in    TEXT        NOT NULL DEFAULT '',
    -- The spike detector's tumbling window: when it started and how many events it holds.
    window_start   TIMESTAMPTZ,
    window_count   BIGINT      NOT NULL DEFAULT 0,
    doc            TEXT        NOT NULL,
    UNIQUE (project_id, fingerprint)
);

-- The orders and filters of issue lists.
CREATE INDEX issues_project_last_seen ON issues (project_id, last_seen DESC, id);
CREATE INDEX issues_status ON issues (status, last_seen DESC);
CREATE INDEX issues_last_seen ON issues (last_seen DESC, id);
CREATE INDEX issues_first_seen ON issues (first_seen);
CREATE INDEX issues_count ON issues (count);

CREATE TABLE error_events (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    issue_id    BIGINT      NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    event_id    TEXT        NOT NULL, -- the SDK's; a resent event repeats it
    received_at TIMESTAMPTZ NOT NULL,
    release     TEXT        NOT NULL DEFAULT '',
    environment TEXT        NOT NULL DEFAULT '',
    doc         TEXT        NOT NULL,
    UNIQUE (project_id, event_id)
);

-- An issue's newest events; retention deletes the oldest.
CREATE INDEX error_events_issue ON error_events (issue_id, id DESC);
CREATE INDEX error_events_received ON error_events (received_at);

-- The distinct users of an issue's events, by errtrack.UserKey.
CREATE TABLE issue_users (
    issue_id BIGINT      NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    user_key TEXT        NOT NULL,
    PRIMARY KEY (issue_id, user_key)
);

-- An issue's events per release and environment; release is '' for events without one, so
-- that every environment of an issue has a row.
CREATE TABLE issue_releases (
    issue_id    BIGINT      NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    release     TEXT        NOT NULL,
    environment TEXT        NOT NULL,
    count       BIGINT      NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issue_id, release, environment)
);

CREATE INDEX issue_releases_release ON issue_releases (release, environment);

-- An issue's events per hour of arrival, for its sparkline.
CREATE TABLE issue_hours (
    issue_id BIGINT      NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    hour     TIMESTAMPTZ NOT NULL, -- the hour's start
    count    BIGINT      NOT NULL,
    PRIMARY KEY (issue_id, hour)
);

CREATE INDEX issue_hours_hour ON issue_hours (hour);
