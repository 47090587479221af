-- What the alert sensor delivered (issue 5): one row per failure (a Dagster event's storage id)
-- and destination, so a failure is alerted once per destination however often a tick is retried,
-- and the messages of the last hour can be counted for the rate limit. Idempotent.

create table if not exists ops.alert_log (
    failure_key text not null,
    sink text not null,
    message_id text not null,
    subject text not null,
    sent_at timestamptz not null default now(),
    primary key (failure_key, sink)
);
create index if not exists alert_log_sent_at on ops.alert_log (sent_at);
