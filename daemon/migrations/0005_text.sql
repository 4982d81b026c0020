-- Text in collections (#17): a record's text, kept with it as the truth the keyword index
-- (daemon/stores/keywords.py) is rebuilt from, and the embedding model a collection names, if any.

ALTER TABLE vectors ADD COLUMN text TEXT;
ALTER TABLE collections ADD COLUMN embed_model TEXT;
