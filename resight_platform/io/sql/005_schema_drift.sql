-- Schema drift (issue 5): how a loaded file's columns differ from its source's registered mapping
-- ({"new": [...], "missing": [...], "renamed": [[registered, found], ...]}), null when they match.
-- Idempotent.

alter table ops.ingestion_ledger add column if not exists schema_drift jsonb;
