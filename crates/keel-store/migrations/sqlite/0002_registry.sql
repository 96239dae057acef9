-- Model registry: registered models, their versions, tags and aliases.
-- Timestamps are milliseconds since the epoch. Rows refer to a model by its
-- integer id, so a rename touches one row; deleting a model cascades to
-- everything below it, deleting a version cascades to its tags and aliases.

CREATE TABLE registered_models (
    registered_model_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    creation_time       INTEGER NOT NULL,
    last_updated_time   INTEGER NOT NULL,
    description         TEXT,
    -- The highest version number ever given: numbers are never reused after a delete.
    last_version        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX registered_models_by_last_updated ON registered_models (last_updated_time, name);
CREATE INDEX registered_models_by_creation ON registered_models (creation_time, name);

CREATE TABLE registered_model_tags (
    registered_model_id INTEGER NOT NULL
        REFERENCES registered_models(registered_model_id) ON DELETE CASCADE,
    key                 TEXT NOT NULL,
    value               TEXT NOT NULL,
    PRIMARY KEY (registered_model_id, key)
) WITHOUT ROWID;
CREATE INDEX registered_model_tags_by_key_value ON registered_model_tags (key, value);

CREATE TABLE model_versions (
    registered_model_id INTEGER NOT NULL
        REFERENCES registered_models(registered_model_id) ON DELETE CASCADE,
    version             INTEGER NOT NULL,
    creation_time       INTEGER NOT NULL,
    last_updated_time   INTEGER NOT NULL,
    description         TEXT,
    current_stage       TEXT NOT NULL DEFAULT 'None',
    source              TEXT NOT NULL,
    storage_location    TEXT NOT NULL,
    run_id              TEXT,
    run_link            TEXT,
    model_id            TEXT,
    PRIMARY KEY (registered_model_id, version)
) WITHOUT ROWID;
CREATE INDEX model_versions_by_stage ON model_versions (registered_model_id, current_stage, version);
CREATE INDEX model_versions_by_run ON model_versions (run_id);
CREATE INDEX model_versions_by_last_updated ON model_versions (last_updated_time);

CREATE TABLE model_version_tags (
    registered_model_id INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    key                 TEXT NOT NULL,
    value               TEXT NOT NULL,
    PRIMARY KEY (registered_model_id, version, key),
    FOREIGN KEY (registered_model_id, version)
        REFERENCES model_versions(registered_model_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX model_version_tags_by_key_value ON model_version_tags (key, value);

-- An alias names one version of one model; moving it re-points the row.
CREATE TABLE registered_model_aliases (
    registered_model_id INTEGER NOT NULL,
    alias               TEXT NOT NULL,
    version             INTEGER NOT NULL,
    PRIMARY KEY (registered_model_id, alias),
    FOREIGN KEY (registered_model_id, version)
        REFERENCES model_versions(registered_model_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX registered_model_aliases_by_version ON registered_model_aliases (registered_model_id, version);
