-- What Store keeps: plugin kv data with each scope's usage (updated in the same transaction,
-- under the usage row's lock), artifact records (contents are files in a shared folder),
-- prompt templates, and the pipelines added through the API.
CREATE TABLE kv (
    plugin text NOT NULL,
    repository text NOT NULL,
    key text NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (plugin, repository, key)
);
CREATE TABLE kv_usage (
    plugin text NOT NULL,
    repository text NOT NULL,
    keys bigint NOT NULL,
    bytes bigint NOT NULL,
    PRIMARY KEY (plugin, repository)
);
CREATE TABLE artifacts (
    run_id text NOT NULL,
    name text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    path text NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE templates (
    id text PRIMARY KEY,
    text text NOT NULL
);
CREATE TABLE api_pipelines (
    name text PRIMARY KEY,
    text text NOT NULL
);
