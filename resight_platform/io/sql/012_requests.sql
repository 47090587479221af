-- Request cost (issue 20, point 5): the platform's own S3 and SQS requests, counted by the
-- process that sent them (io/requests.py: every HTTP attempt, retries included, as AWS bills)
-- and flushed by UTC day; priced from an editable table; set against the files landed each day.
-- Idempotent (applied on every start, io/ops.py `migrate`).

create table if not exists ops.request_counts (
    day date not null,
    -- what spent them: landing_sensor, bronze, lake, retention, registry, ... (docs/operations.md)
    component text not null,
    -- LIST, GET, HEAD, PUT, DELETE, SQS_RECEIVE, SQS_DELETE, SQS_OTHER, OTHER
    kind text not null,
    requests bigint not null default 0,
    primary key (day, component, kind)
);

-- Dollars per million requests of each kind. Data, not code: an operator edits a price (another
-- region, a negotiated rate) and the re-run of this script keeps the edit (do nothing on conflict).
create table if not exists ops.request_prices (
    kind text primary key,
    usd_per_million numeric not null,
    note text
);

-- AWS us-east-1 list prices (S3 Standard; SQS standard queue), as of 2026. SQS's free tier (the
-- first million requests a month) is not taken off.
insert into ops.request_prices (kind, usd_per_million, note) values
    ('LIST', 5.00, 'S3 Standard: PUT, COPY, POST, LIST requests $0.005 per 1,000'),
    ('PUT', 5.00, 'S3 Standard: PUT, COPY, POST, LIST requests $0.005 per 1,000 (multipart: each part)'),
    ('GET', 0.40, 'S3 Standard: GET, SELECT and all other requests $0.0004 per 1,000'),
    ('HEAD', 0.40, 'S3 Standard: billed as GET and all other requests'),
    ('OTHER', 0.40, 'S3 Standard: all other requests (see io/requests.other_operations for what they were)'),
    ('DELETE', 0.00, 'S3: DELETE and CANCEL requests are free'),
    ('SQS_RECEIVE', 0.40, 'SQS standard queue: $0.40 per million requests (each 64 KB chunk of a payload is a request)'),
    ('SQS_DELETE', 0.40, 'SQS standard queue: $0.40 per million requests'),
    ('SQS_OTHER', 0.40, 'SQS standard queue: $0.40 per million requests')
on conflict (kind) do nothing;

-- The files landed in a day are counted on the ledger's first_seen (one range read per day).
create index if not exists ingestion_ledger_first_seen on ops.ingestion_ledger (first_seen);

-- Per day, component and kind: requests and their dollars at the price table's rate (a kind
-- without a price: usd null). Cheap: the counts table is days x components x kinds.
create or replace view health.request_counts as
select
    c.day,
    c.component,
    c.kind,
    c.requests,
    p.usd_per_million,
    (c.requests * p.usd_per_million / 1000000)::numeric as usd
from ops.request_counts c
left join ops.request_prices p on p.kind = c.kind;

-- health.request_counts with each day's totals beside it: all requests and dollars of the day,
-- the files the ledger first saw that day (UTC), and requests per landed file: the row's
-- (component and kind) and the day's. Filter on day: the filter reaches the grouping by day, so
-- only the days read count their files, once a day, on the first_seen index (`day` comes from
-- that grouping, not from the rows joined to it, for that reason).
create or replace view health.requests as
select
    d.day,
    r.component,
    r.kind,
    r.requests,
    r.usd_per_million,
    r.usd,
    d.day_requests,
    d.day_usd,
    d.files_landed,
    (r.requests::double precision / nullif(d.files_landed, 0)) as requests_per_file,
    (d.day_requests::double precision / nullif(d.files_landed, 0)) as day_requests_per_file
from (
    select t.day, t.day_requests, t.day_usd, f.files_landed
    from (
        select day, sum(requests)::bigint as day_requests, sum(usd) as day_usd
        from health.request_counts
        group by day
    ) t
    cross join lateral (
        select count(*)::bigint as files_landed
        from ops.ingestion_ledger l
        where l.first_seen >= (t.day::timestamp at time zone 'UTC')
          and l.first_seen < ((t.day + 1)::timestamp at time zone 'UTC')
    ) f
) d
join health.request_counts r on r.day = d.day;
