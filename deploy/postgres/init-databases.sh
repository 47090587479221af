#!/bin/sh
# Run once by the postgres image, on an empty data volume (/docker-entrypoint-initdb.d): one role and
# one database each for Dagster's storage, the warehouse and MLflow's store, none able to connect to
# another's database. The passwords come from the container's environment (deploy/.env), passed to
# psql as variables, never written into this file. `resight` may create roles: the platform makes
# its analyst role itself (resight_platform/io/roles.py).
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v dagster_password="$DAGSTER_PG_PASSWORD" \
    -v resight_password="$RESIGHT_PG_PASSWORD" \
    -v mlflow_password="$MLFLOW_PG_PASSWORD" <<'SQL'
CREATE ROLE dagster LOGIN PASSWORD :'dagster_password';
CREATE DATABASE dagster OWNER dagster;
REVOKE ALL ON DATABASE dagster FROM PUBLIC;
CREATE ROLE resight LOGIN CREATEROLE PASSWORD :'resight_password';
CREATE DATABASE resight OWNER resight;
REVOKE ALL ON DATABASE resight FROM PUBLIC;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
SQL
