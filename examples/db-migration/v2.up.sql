-- v2: the job queue grows four columns and the legacy tables go.
-- "Drop the old tables" becomes "archive them": the rollback migration can bring them back
-- with their rows. A later release drops the archives once v2 is signed off.
BEGIN;
ALTER TABLE jobs
    ADD COLUMN priority int NOT NULL DEFAULT 0,
    ADD COLUMN owner text NOT NULL DEFAULT 'ops',
    ADD COLUMN retries int NOT NULL DEFAULT 0,
    ADD COLUMN timeout_s int NOT NULL DEFAULT 300;
ALTER TABLE legacy_jobs RENAME TO archived_legacy_jobs;
ALTER TABLE legacy_job_runs RENAME TO archived_legacy_job_runs;
COMMIT;
