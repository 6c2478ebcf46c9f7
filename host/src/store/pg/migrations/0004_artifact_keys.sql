-- Artifact contents moved behind object_store, where an artifact's key is always
-- `<run_id>/<name>`: the stored file path is no longer needed (nor true on every node).
ALTER TABLE artifacts DROP COLUMN path;
