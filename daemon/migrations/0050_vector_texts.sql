-- The rows of a collection that have a text (daemon/stores/vectors/clock.py texts()): what the keyword
-- index is reconciled with when a start takes up the rows a close saved, instead of scanning every row.
CREATE INDEX vectors_with_text ON vectors (collection_id) WHERE text IS NOT NULL;
