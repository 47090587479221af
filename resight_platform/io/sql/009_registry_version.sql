-- Registry versions (issue 17): which registry a file was read, loaded or dead-lettered under.
-- registry_version is the whole registry's version (sources/registry.py's Registry.version, a
-- digest of its files): an on-call engineer sees which files went through before and after an
-- onboarding edit. provider_version is the version of the file's provider's own rows
-- (Registry.provider_versions): ops/sources compares the last loaded file's with today's to tell a
-- partner whose registry rows changed since its last file, which the whole registry's version
-- cannot (it changes for everyone when one partner is onboarded). Rows written before this script
-- stay null: the version then was not recorded. Idempotent.

alter table ops.ingestion_ledger add column if not exists registry_version text;
alter table ops.ingestion_ledger add column if not exists provider_version text;

-- ops/sources reads, per registered provider, its newest loaded file and its files of the last
-- days (io/ops.provider_activity): index-only lookups whose cost grows with the providers, not
-- with the ledger.
create index if not exists ingestion_ledger_provider_processed
    on ops.ingestion_ledger (provider, processed_at) include (status, provider_version);
