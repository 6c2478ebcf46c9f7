-- Runs and their queue. `record` is the whole run as the API shows it (steps included); the
-- columns beside it are the fields queries filter and order on, kept equal to the record's
-- by every write.
CREATE TABLE runs (
    id text PRIMARY KEY,
    pipeline text NOT NULL,
    repository text NOT NULL,
    run_group text,
    state text NOT NULL,
    finished_at_ms bigint,
    lease_until_ms bigint,
    record jsonb NOT NULL
);
-- The queue: claims take the oldest queued run.
CREATE INDEX runs_queued ON runs (id) WHERE state = 'queued';
CREATE INDEX runs_running ON runs (lease_until_ms) WHERE state = 'running';
CREATE INDEX runs_by_state ON runs (state, id);
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
CREATE INDEX runs_by_group ON runs (run_group, id) WHERE run_group IS NOT NULL;
CREATE INDEX runs_finished ON runs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;

-- Log lines: `seq` orders them; one writer per run appends, so a run's lines commit in order.
CREATE TABLE run_logs (
    run_id text NOT NULL,
    seq bigserial NOT NULL,
    line text NOT NULL,
    PRIMARY KEY (run_id, seq)
);
