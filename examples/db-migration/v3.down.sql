-- The rollback of v3.
ALTER TABLE jobs RENAME COLUMN owner_id TO owner;
