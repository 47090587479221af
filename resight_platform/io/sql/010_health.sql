-- Pipeline health (issue 19, point 5): views an on-call engineer, `resight health`, the metrics
-- endpoint and the Grafana dashboard read (docs/operations.md). Idempotent.
--
-- Schema `health`, not `ops`: the analyst role never reads `ops` (io/roles.py, `resight doctor`),
-- and Grafana's Postgres datasource logs in as that read-only role. A view reads the ledger with
-- its owner's rights, so the analyst reads these views and still nothing of `ops`. They show the
-- ledger's error text unmasked (`last_error`, `error`): a partner's file names and parse errors,
-- never a secret (the ledger holds none).
--
-- A file's arrival is when the landing sensor queued its current version (`queued_at`), else
-- when the ledger first saw it (`first_seen`: `resight run` reads without queueing). Its freshness
-- lag runs from arrival to `loaded_at`, when that version (its checksum) first reached silver: a
-- restatement that reads and loads the same bytes again keeps the first time.
--
-- Views are made with `create or replace`, which may only add columns at the end: a later script
-- that changes a column of one drops the view first. The indexes are built in the migrations'
-- transaction (not concurrently): on a large existing ledger the first start after this script
-- waits for them (seconds per million files) while no file can be ledgered.

alter table ops.ingestion_ledger add column if not exists loaded_at timestamptz;

create schema if not exists health;

-- The windows the views are read by, each on an index: files handled since a time (processed_at),
-- one run's files (run_id), a range of business dates, a source's newest and oldest delivery.
create index if not exists ingestion_ledger_processed on ops.ingestion_ledger (processed_at);
create index if not exists ingestion_ledger_run on ops.ingestion_ledger (run_id) where run_id is not null;
create index if not exists ingestion_ledger_business_date on ops.ingestion_ledger (business_date);
create index if not exists ingestion_ledger_source_seen
    on ops.ingestion_ledger (provider, feed, first_seen) where status <> 'vanished';

-- One row per ledger file: a plain projection, so a filter on any column reaches the indexes.
create or replace view health.files as
select
    l.file_key,
    l.provider,
    l.feed,
    l.business_date,
    l.status,
    l.bytes,
    l.rows_in,
    l.rows_loaded,
    l.rows_quarantined,
    coalesce(l.queued_at, l.first_seen) as arrived_at,
    l.processed_at,
    l.loaded_at,
    extract(epoch from l.loaded_at - coalesce(l.queued_at, l.first_seen))::double precision as lag_seconds,
    l.run_id,
    l.run_key,
    l.error_code,
    l.error,
    l.registry_version
from ops.ingestion_ledger l;

-- Per source and business date: files by status, rows, dead letters, arrival and processing
-- times, durations and freshness lag (seconds), the newest error.
create or replace view health.source_days as
select
    l.provider,
    l.feed,
    l.business_date,
    count(*) filter (where l.status <> 'vanished') as files,
    count(*) filter (where l.status = 'queued') as files_queued,
    count(*) filter (where l.status = 'read') as files_read,
    count(*) filter (where l.status = 'loaded') as files_loaded,
    count(*) filter (where l.status = 'dead_lettered') as dead_letters,
    count(*) filter (where l.status = 'vanished') as files_vanished,
    coalesce(sum(l.rows_in), 0)::bigint as rows_in,
    coalesce(sum(l.rows_loaded), 0)::bigint as rows_loaded,
    coalesce(sum(l.rows_quarantined), 0)::bigint as rows_quarantined,
    min(coalesce(l.queued_at, l.first_seen)) as first_arrival,
    max(coalesce(l.queued_at, l.first_seen)) as last_arrival,
    max(l.processed_at) as last_processed,
    max(l.loaded_at) as last_loaded,
    -- arrival -> bronze read (queue wait and read), of files not read again since their load
    max(extract(epoch from l.processed_at - coalesce(l.queued_at, l.first_seen)))
        filter (where l.loaded_at is null or l.processed_at <= l.loaded_at)::double precision as read_seconds_max,
    -- bronze read -> silver load
    max(extract(epoch from l.loaded_at - l.processed_at))
        filter (where l.processed_at <= l.loaded_at)::double precision as load_seconds_max,
    -- arrival -> silver load (the freshness lag)
    avg(extract(epoch from l.loaded_at - coalesce(l.queued_at, l.first_seen)))
        filter (where l.status = 'loaded')::double precision as lag_seconds_avg,
    max(extract(epoch from l.loaded_at - coalesce(l.queued_at, l.first_seen)))
        filter (where l.status = 'loaded')::double precision as lag_seconds_max,
    -- the oldest file still waiting for silver (queued or read): its lag is still growing
    min(coalesce(l.queued_at, l.first_seen)) filter (where l.status in ('queued', 'read')) as oldest_pending_arrival,
    (array_agg(l.error_code order by l.processed_at desc nulls last) filter (where l.error_code is not null))[1]
        as last_error_code,
    (array_agg(l.error order by l.processed_at desc nulls last) filter (where l.error_code is not null))[1]
        as last_error,
    max(l.processed_at) filter (where l.error_code is not null) as last_error_at
from ops.ingestion_ledger l
where l.provider is not null and l.feed is not null and l.business_date is not null
group by l.provider, l.feed, l.business_date;

-- Per Dagster run that read files (the ledger's run_id), and per run the landing sensor
-- requested that has not read its files yet (run_id null, its run_key). Read it by run_id (an
-- index); for the runs of a time range, take their ids from health.files (processed_at) and join
-- LATERAL (docs/operations.md).
create or replace view health.runs as
select
    l.run_id,
    case when l.run_id is null then l.run_key end as run_key,
    case
        when count(*) filter (where l.status = 'queued') > 0 then 'queued'
        when count(*) filter (where l.status = 'read') > 0 then 'awaiting_silver'
        when count(*) filter (where l.status = 'dead_lettered') = count(*) then 'dead_lettered'
        when count(*) filter (where l.status = 'dead_lettered') > 0 then 'loaded_with_dead_letters'
        else 'loaded'
    end as status,
    count(*) as files,
    count(*) filter (where l.status = 'loaded') as files_loaded,
    count(*) filter (where l.status = 'dead_lettered') as dead_letters,
    count(*) filter (where l.status = 'vanished') as files_vanished,
    count(distinct l.provider) as providers,
    coalesce(sum(l.rows_in), 0)::bigint as rows_in,
    coalesce(sum(l.rows_loaded), 0)::bigint as rows_loaded,
    coalesce(sum(l.rows_quarantined), 0)::bigint as rows_quarantined,
    min(l.business_date) as first_business_date,
    max(l.business_date) as last_business_date,
    min(coalesce(l.queued_at, l.first_seen)) as first_arrival,
    min(l.processed_at) as first_processed,
    max(l.processed_at) as last_processed,
    max(l.loaded_at) as last_loaded,
    max(extract(epoch from l.loaded_at - coalesce(l.queued_at, l.first_seen)))
        filter (where l.status = 'loaded')::double precision as lag_seconds_max
from ops.ingestion_ledger l
where l.run_id is not null or l.run_key is not null
group by l.run_id, case when l.run_id is null then l.run_key end;

-- Per registered source (ops.sources, as the ops/sources asset last synced the registry): its
-- first and newest delivery (any file but a vanished one, as the freshness check counts them)
-- and how far past its expected window it is, grace not included (`resight health` adds
-- RESIGHT_FRESHNESS_GRACE_HOURS). A source that never delivered counts from the first delivery of
-- any source (when the platform started receiving files). Two index lookups per source.
create or replace view health.sources as
select
    s.*,
    extract(epoch from now() - coalesce(s.last_delivery, s.watching_since))::double precision
        - s.expected_every_hours * 3600.0 as overdue_seconds
from (
    select
        src.provider,
        src.feed,
        src.provider_name,
        src.active,
        src.expected_every_hours,
        first_file.first_seen as first_delivery,
        last_file.first_seen as last_delivery,
        min(first_file.first_seen) over () as watching_since
    from ops.sources src
    left join lateral (
        select l.first_seen from ops.ingestion_ledger l
        where l.provider = src.provider and l.feed = src.feed and l.status <> 'vanished'
        order by l.first_seen limit 1
    ) first_file on true
    left join lateral (
        select l.first_seen from ops.ingestion_ledger l
        where l.provider = src.provider and l.feed = src.feed and l.status <> 'vanished'
        order by l.first_seen desc limit 1
    ) last_file on true
) s;
