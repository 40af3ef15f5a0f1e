-- Idempotent timeline events: an event with a key is recorded once per release, however often
-- the reconcile that records it repeats.
ALTER TABLE release_events ADD COLUMN event_key TEXT;
CREATE UNIQUE INDEX release_events_key ON release_events (release_id, event_key);

-- The notification outbox: one row per message per channel, written in the transaction of the
-- event that causes it, delivered by a worker.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT    NOT NULL,
    dedup_key       TEXT    NOT NULL,
    release_id      INTEGER REFERENCES releases (id) ON DELETE SET NULL,
    event_type      TEXT    NOT NULL,
    event           TEXT    NOT NULL, -- JSON
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER
);

-- One message per event per channel, across retries, replicas and restarts.
CREATE UNIQUE INDEX notifications_dedup ON notifications (channel, dedup_key);
-- The head of each channel's queue: delivery is in id order per channel.
CREATE INDEX notifications_pending ON notifications (channel, id) WHERE status = 'pending';
CREATE INDEX notifications_recent ON notifications (id DESC);
CREATE INDEX notifications_status ON notifications (status, id DESC);
CREATE INDEX notifications_release ON notifications (release_id);
