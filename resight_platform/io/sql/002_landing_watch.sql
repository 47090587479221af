-- The landing sensor's view of the ledger (issue 4): a file's identity is its key plus its listing
-- ETag (S3's ETag; size and mtime for a local file) and, once read, its SHA-256 checksum.
-- 'queued' = requested by the landing sensor, not yet read; run_key names the run that will read it.
-- Idempotent like every script here.

alter table ops.ingestion_ledger add column if not exists etag text;
alter table ops.ingestion_ledger add column if not exists run_key text;
alter table ops.ingestion_ledger add column if not exists queued_at timestamptz;
alter table ops.ingestion_ledger alter column checksum drop not null;

do $$
begin
    -- Superseded by 003's constraint once that exists.
    if not exists (
        select 1 from pg_constraint where conname in ('ingestion_ledger_status_v2', 'ingestion_ledger_status_v3')
    ) then
        alter table ops.ingestion_ledger drop constraint if exists ingestion_ledger_status_check;
        alter table ops.ingestion_ledger add constraint ingestion_ledger_status_v2
            check (status in ('queued', 'read', 'loaded', 'dead_lettered'));
    end if;
end $$;

create index if not exists ingestion_ledger_queued on ops.ingestion_ledger (run_key) where status = 'queued';
