-- Unknown members and late-arriving dimensions (issue 15). Idempotent.
--
-- gold.fact_sales keeps the partner's own natural keys beside the surrogate keys: a sale of an SKU,
-- store or customer its dimension does not hold yet sits on that dimension's unknown member (key 0)
-- with its sku / store_id / customer_id, and is re-resolved when the dimension lands (the
-- late_dimension_sensor rebuilds the affected date × provider partitions; docs/architecture.md).
-- Rows loaded before this script have null natural keys until their partition is rebuilt.

alter table gold.fact_sales add column if not exists provider text;
alter table gold.fact_sales add column if not exists sku text;
alter table gold.fact_sales add column if not exists store_id text;
alter table gold.fact_sales add column if not exists customer_id text;

-- The facts still on an unknown member, found without reading the resolved ones.
create index if not exists fact_sales_unknown_product on gold.fact_sales (provider, sku) where product_key = 0;
create index if not exists fact_sales_unknown_store on gold.fact_sales (provider, store_id) where store_key = 0;
create index if not exists fact_sales_unknown_customer on gold.fact_sales (provider, customer_id)
    where customer_key = 0;

-- Key 0 is the unknown member of every dimension a fact may name without resolving (the product's
-- is inserted by io/ops.migrate). Null store and customer keys keep meaning "none" (online,
-- anonymous).
insert into gold.dim_store (store_key, provider, store_id, store_name)
values (0, '', '', 'Unknown store')
on conflict do nothing;
insert into gold.dim_customer (customer_key, provider, customer_id)
values (0, '', '')
on conflict do nothing;
