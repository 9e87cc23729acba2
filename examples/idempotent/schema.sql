-- The shop's schema as code: every deploy applies this whole file, so each statement must be
-- safe to run again (on a database that has it all already, or half of it after an interrupted
-- run). IF NOT EXISTS everywhere; data changes guarded by ON CONFLICT.
SET lock_timeout = '10min';  -- wait behind long reports rather than fail (the step's timeout is 15m)
CREATE TABLE IF NOT EXISTS orders (
    id serial PRIMARY KEY,
    item text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE orders ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'new';
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status);
CREATE TABLE IF NOT EXISTS settings (name text PRIMARY KEY, value text NOT NULL);
INSERT INTO settings VALUES ('checkout', 'on') ON CONFLICT (name) DO NOTHING;
