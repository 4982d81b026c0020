-- A collection's `precision` (f32 | f16 | i8): of the copies its HNSW graph holds (the local store), while
-- results are re-ranked from the full-precision rows. Collections made before it get f16, the default.

ALTER TABLE collections ADD COLUMN precision TEXT NOT NULL DEFAULT 'f16';
