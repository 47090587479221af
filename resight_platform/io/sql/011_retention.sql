-- Retention (issue 19): one row per object (or, for ops.quarantine, per partition's rows) that the
-- retention job deleted, written before the deletion itself (resight_platform/retention.py): the
-- ledger of what is gone and why. The landing sensor reads it so that a late file for a partition
-- whose earlier files were retired is dead-lettered instead of rebuilding the partition from
-- itself alone. Idempotent.

create table if not exists ops.retention_log (
    id bigserial primary key,
    run_id text not null,
    layer text not null,
    store_url text not null,
    key text not null,
    partition text not null,
    provider text,
    feed text,
    business_date date,
    bytes bigint,
    rows bigint,
    etag text,
    reason text not null,
    deleted_at timestamptz not null default now()
);

-- The late-file guard's lookup: a landing partition's retirements.
create index if not exists retention_log_partition on ops.retention_log (layer, provider, feed, business_date);
create index if not exists retention_log_run on ops.retention_log (run_id);
