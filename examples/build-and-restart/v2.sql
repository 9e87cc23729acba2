-- v2: customer emails move to their own table and the old column is dropped. It cannot be
-- undone (the dropped column is gone): only the backup taken before it brings it back.
-- Buggy on purpose, for the example: the app still reads orders.customer_email, so the health
-- checks fail after this migration, and v2 is restored from the backup.
BEGIN;
CREATE TABLE IF NOT EXISTS customers (email text PRIMARY KEY);
INSERT INTO customers SELECT DISTINCT customer_email FROM orders WHERE customer_email IS NOT NULL
ON CONFLICT DO NOTHING;
ALTER TABLE orders DROP COLUMN customer_email;
COMMIT;
