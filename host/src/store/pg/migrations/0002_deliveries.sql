-- Webhook deliveries, deduplicated by source and delivery id. `fed`: their runs are queued;
-- `feeding_until_ms`: a node took them to queue their runs and holds them until then.
CREATE TABLE deliveries (
    seq bigserial PRIMARY KEY,
    source text NOT NULL,
    delivery_id text NOT NULL,
    received_at_ms bigint NOT NULL,
    event_json bytea NOT NULL,
    raw_body bytea NOT NULL,
    answer jsonb NOT NULL,
    runs jsonb NOT NULL,
    fed boolean NOT NULL DEFAULT false,
    feeding_until_ms bigint,
    UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_unfed ON deliveries (seq) WHERE NOT fed;
CREATE INDEX deliveries_received ON deliveries (received_at_ms) WHERE fed;
