-- v3 (buggy on purpose, for the example): it renames a column the app still reads.
-- The verify queries right after the migration catch it: three of the four columns remain.
ALTER TABLE jobs RENAME COLUMN owner TO owner_id;
