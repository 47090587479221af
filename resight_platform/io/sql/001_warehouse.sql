-- ReSight warehouse: ops (pipeline bookkeeping), gold (star schema), marts (business tables).
-- Idempotent: applied on every start by resight_platform.io.ops.migrate().

create schema if not exists ops;
create schema if not exists gold;
create schema if not exists marts;

create table if not exists ops.sources (
    provider text not null,
    feed text not null,
    provider_name text not null,
    kind text not null,
    profile text not null,
    format text not null,
    timezone text not null,
    currency text not null,
    expected_every_hours integer not null,
    active boolean not null,
    updated_at timestamptz not null default now(),
    primary key (provider, feed)
);

create table if not exists ops.ingestion_ledger (
    file_key text primary key,
    checksum text not null,
    provider text,
    feed text,
    business_date date,
    bytes bigint not null,
    rows_in bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    status text not null check (status in ('read', 'loaded', 'dead_lettered')),
    error_code text,
    error text,
    dead_letter_uri text,
    first_seen timestamptz not null default now(),
    processed_at timestamptz,
    run_id text
);
create index if not exists ingestion_ledger_partition on ops.ingestion_ledger (feed, business_date, provider);
create index if not exists ingestion_ledger_status on ops.ingestion_ledger (status);

create table if not exists ops.quarantine (
    feed text not null,
    provider text not null,
    business_date date not null,
    source_file text not null,
    row_number bigint not null,
    rule text not null,
    raw jsonb not null,
    ingested_at timestamptz
);
create index if not exists quarantine_partition on ops.quarantine (feed, business_date, provider);
create index if not exists quarantine_rule on ops.quarantine (rule);

create table if not exists gold.dim_date (
    date_key integer primary key,
    date date not null unique,
    year smallint not null,
    quarter smallint not null,
    month smallint not null,
    month_start date not null,
    week_start date not null,
    day_of_week smallint not null,
    is_weekend boolean not null
);

create table if not exists gold.dim_provider (
    provider_key bigint primary key,
    provider text not null unique,
    provider_name text not null,
    kind text not null,
    timezone text not null,
    currency text not null
);

create table if not exists gold.dim_store (
    store_key bigint primary key,
    provider text not null,
    store_id text not null,
    store_name text,
    city text,
    state text,
    zip text,
    region text,
    unique (provider, store_id)
);

create table if not exists gold.dim_product (
    product_key bigint primary key,
    provider text not null,
    sku text not null,
    upc text,
    product_name text,
    brand text,
    manufacturer text,
    category text,
    species text,
    pack_size double precision,
    pack_unit text,
    list_price numeric(12, 2),
    unique (provider, sku)
);

create table if not exists gold.dim_customer (
    customer_key bigint primary key,
    provider text not null,
    customer_id text not null,
    signup_date date,
    state text,
    region text,
    pet_species text,
    unique (provider, customer_id)
);

create table if not exists gold.fact_sales (
    sale_date date not null,
    date_key integer not null references gold.dim_date (date_key),
    provider_key bigint not null references gold.dim_provider (provider_key),
    product_key bigint not null references gold.dim_product (product_key),
    store_key bigint references gold.dim_store (store_key),
    customer_key bigint references gold.dim_customer (customer_key),
    order_id text not null,
    line_no integer not null,
    ordered_at timestamptz not null,
    channel text not null,
    quantity integer not null,
    unit_price numeric(12, 2) not null,
    discount numeric(12, 2) not null,
    net_amount numeric(14, 2) not null,
    status text not null,
    ship_state text,
    region text,
    source_file text not null,
    primary key (sale_date, provider_key, order_id, line_no)
) partition by range (sale_date);
create index if not exists fact_sales_date_key on gold.fact_sales (date_key);
create index if not exists fact_sales_provider_key on gold.fact_sales (provider_key);
create index if not exists fact_sales_product_key on gold.fact_sales (product_key);
create index if not exists fact_sales_store_key on gold.fact_sales (store_key);
create index if not exists fact_sales_customer_key on gold.fact_sales (customer_key);

create table if not exists marts.daily_sales (
    sale_date date not null,
    category text not null,
    species text not null,
    region text not null,
    channel text not null,
    units bigint not null,
    revenue numeric(16, 2) not null,
    orders bigint not null,
    avg_order_value numeric(12, 2) not null
);
create index if not exists daily_sales_date on marts.daily_sales (sale_date);

create table if not exists marts.monthly_sales (
    month date not null,
    category text not null,
    species text not null,
    region text not null,
    channel text not null,
    units bigint not null,
    revenue numeric(16, 2) not null,
    orders bigint not null,
    avg_order_value numeric(12, 2) not null
);

create table if not exists marts.brand_share_monthly (
    month date not null,
    category text not null,
    species text not null,
    region text not null,
    brand text not null,
    revenue numeric(16, 2) not null,
    share double precision not null,
    share_change double precision
);

create table if not exists marts.top_products_monthly (
    month date not null,
    rank integer not null,
    provider text not null,
    sku text not null,
    product_name text,
    brand text,
    category text,
    species text,
    units bigint not null,
    revenue numeric(16, 2) not null
);

create table if not exists marts.top_customers_monthly (
    month date not null,
    rank integer not null,
    provider text not null,
    customer_id text not null,
    region text,
    orders bigint not null,
    revenue numeric(16, 2) not null
);

create table if not exists marts.order_status_impact (
    month date not null,
    category text not null,
    region text not null,
    status text not null,
    lines bigint not null,
    amount numeric(16, 2) not null,
    share_of_amount double precision not null
);

create table if not exists marts.aov_by_region (
    month date not null,
    region text not null,
    orders bigint not null,
    revenue numeric(16, 2) not null,
    avg_order_value numeric(12, 2) not null
);
