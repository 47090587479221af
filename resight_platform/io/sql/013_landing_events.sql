-- Event-driven landing (issue 20, io/events.py): files a landing notification named that could not
-- be requested yet (their partition is being written by a run in flight, or the tick's run budget
-- was spent). The notification is deleted from the queue once its file is here or in the ledger,
-- so the queue never holds the backlog: each tick reads this list back (oldest first) with what
-- arrived. A row leaves the list when its file is queued, refused, found unchanged or gone.
-- Idempotent like every script here.

create table if not exists ops.landing_waiting (
    file_key text primary key,
    etag text not null,
    bytes bigint not null,
    last_modified timestamptz not null,
    noticed_at timestamptz not null default now()
);

create index if not exists landing_waiting_noticed on ops.landing_waiting (noticed_at);

-- Recently queued files whose run may never have been created (a daemon stopped mid-tick): the
-- event path has no listing to see them again, so each tick looks them up by queue time.
create index if not exists ingestion_ledger_queued_at on ops.ingestion_ledger (queued_at) where status = 'queued';
