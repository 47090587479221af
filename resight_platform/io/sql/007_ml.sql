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
-- The analyst role reads it like every gold table: io/roles.ensure_analyst_role grants SELECT on
-- gold's tables and default privileges for new ones.
