-- The rollback of v2: the legacy tables back (with their rows), the four columns gone.
BEGIN;
ALTER TABLE archived_legacy_jobs RENAME TO legacy_jobs;
ALTER TABLE archived_legacy_job_runs RENAME TO legacy_job_runs;
ALTER TABLE jobs DROP COLUMN priority, DROP COLUMN owner, DROP COLUMN retries, DROP COLUMN timeout_s;
COMMIT;
