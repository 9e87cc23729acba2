-- v1: the shop's orders as production has them (the test loads this first). Safe to run again.
CREATE TABLE IF NOT EXISTS orders (
    id serial PRIMARY KEY,
    item text NOT NULL,
    customer_email text
);
INSERT INTO orders (item, customer_email)
SELECT 'teapot', 'ann@example.com' WHERE NOT EXISTS (SELECT 1 FROM orders);
