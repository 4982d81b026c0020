-- The local vector store (daemon/stores/vectors/local.py): every vector of every collection, as the
-- source of truth the in-memory index is rebuilt from. An upsert is one transaction, so it lands whole
-- or not at all, even under kill -9. `label` is a per-collection counter, fresh for each write of a
-- vector, so a label always names one exact set of values: the persisted HNSW snapshot is reconciled
-- against this table by comparing label sets. `embedding` is little-endian float32.
-- No foreign key to collections: the store is told which spaces to drop, and a Pinecone-backed
-- daemon never writes here.

CREATE TABLE vectors (
    collection_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    label BIGINT NOT NULL,
    embedding BLOB NOT NULL,
    metadata TEXT,
    PRIMARY KEY (collection_id, namespace, id)
);
CREATE UNIQUE INDEX vectors_label ON vectors (collection_id, label);
