-- v1: the schema the jobs service runs on today (production has it already; the test loads it
-- first). Safe to run again: IF NOT EXISTS, guarded inserts.
CREATE TABLE IF NOT EXISTS jobs (
    id serial PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS legacy_jobs (id int PRIMARY KEY, payload text);
CREATE TABLE IF NOT EXISTS legacy_job_runs (job_id int, ran_at timestamptz);
INSERT INTO jobs (name) SELECT 'nightly report' WHERE NOT EXISTS (SELECT 1 FROM jobs);
INSERT INTO legacy_jobs VALUES (1, 'the old nightly report') ON CONFLICT DO NOTHING;
