-- v1 is the baseline: there is nothing before it to go back to.
SELECT 'v1 has no rollback migration' AS note;
