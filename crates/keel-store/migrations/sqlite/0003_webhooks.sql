-- Model registry webhooks (MLflow 3) and the events each subscribes to.
-- Timestamps are milliseconds since the epoch. The secret signs deliveries and
-- is never returned by the API; deleting a webhook deletes its row (and the
-- secret with it), cascading to its events.

CREATE TABLE webhooks (
    webhook_id        TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    description       TEXT,
    url               TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
    secret            TEXT,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhooks_by_creation ON webhooks (creation_time DESC, webhook_id);

CREATE TABLE webhook_events (
    webhook_id TEXT NOT NULL REFERENCES webhooks(webhook_id) ON DELETE CASCADE,
    entity     TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- The order the events were given in, so they read back the same way.
    position   INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, entity, action)
) WITHOUT ROWID;
CREATE INDEX webhook_events_by_event ON webhook_events (entity, action);
