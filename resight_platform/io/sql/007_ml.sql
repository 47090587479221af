-- ML at the gold tier (issue 6): the weekly demand forecast the BI tools read. Replaced whole by
-- the gold/ml_demand_forecast asset (the registered champion model's next weeks per series).
-- Idempotent.

create table if not exists gold.ml_demand_forecast (
    week_start date not null,
    category text not null,
    species text not null,
    region text not null,
    horizon smallint not null,
    units double precision not null,
    model_version integer not null,
    trained_through date not null,
    primary key (week_start, category, species, region)
);

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'analyst') then
        grant usage on schema gold to analyst;
        grant select on gold.ml_demand_forecast to analyst;
    end if;
end
$$;
