-- Vectors on several replicas (daemon/stores/vectors/clock.py). Each collection's labels come from
-- `vector_clock`, taken inside the write's transaction: on PostgreSQL the row stays locked until the commit,
-- so the writes to one collection commit in label order, from whichever replica. A replica that has
-- applied every label up to N catches up exactly by reading the rows with a label above N and the
-- tombstones above N: a delete takes a label too and leaves one tombstone per id (id NULL: the whole
-- namespace), kept for an hour (TOMBSTONE_KEEP_S), so that replicas that missed it can apply it.

CREATE TABLE vector_clock (
    collection_id TEXT PRIMARY KEY,
    last_label BIGINT NOT NULL
);
INSERT INTO vector_clock (collection_id, last_label)
    SELECT collection_id, MAX(label) FROM vectors GROUP BY collection_id;
CREATE TABLE vector_tombstones (
    collection_id TEXT NOT NULL,
    label BIGINT NOT NULL,
    namespace TEXT NOT NULL,
    id TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX vector_tombstones_label ON vector_tombstones (collection_id, label);
CREATE INDEX vector_tombstones_at ON vector_tombstones (at);
