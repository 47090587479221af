-- A file the landing sensor queued for a run that, when the run listed its partition, was no
-- longer there (deleted or moved by the partner in between): 'vanished', with the reason, instead
-- of a 'queued' row with nothing behind it. Idempotent like every script here.

do $$
begin
    if not exists (select 1 from pg_constraint where conname = 'ingestion_ledger_status_v3') then
        alter table ops.ingestion_ledger drop constraint if exists ingestion_ledger_status_v2;
        alter table ops.ingestion_ledger add constraint ingestion_ledger_status_v3
            check (status in ('queued', 'read', 'loaded', 'dead_lettered', 'vanished'));
    end if;
end $$;
