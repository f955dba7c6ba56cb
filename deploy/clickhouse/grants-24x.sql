-- Users and grants for ClickHouse 24.x-26.x (SQL access control). Not for 18.16, which has no
-- CREATE USER / GRANT: there, users, profiles (readonly) and allow_databases live in users.xml.
--
-- Placeholders, replaced before running (like {db} in the migrations, statements separated by
-- `-- statement-break`): {db} the pipeline's database (clickhouse.database, default
-- "dispatch"), {pipeline_password}, {migrator_password}, {bi_password}. Run as a user with
-- access management, e.g.:
--   sed -e 's/{db}/dispatch/g' -e "s/{pipeline_password}/$P1/" ... deploy/clickhouse/grants-24x.sql \
--     | clickhouse-client --multiquery
-- Re-running is a no-op (IF NOT EXISTS; GRANT is idempotent). Checked on the 26.9 engine by
-- tests/sql/check_grants.py (what that check can and cannot show: README "ClickHouse versions").
--
-- Three identities:
--   dispatch_ingest          `dispatch-ingest run` (and `audit`, `report`): INSERT only into the
--                            raw table; SELECT on what `run`, `audit` and the reports read.
--   dispatch_ingest_migrate  `dispatch-ingest migrate` (the k8s migration Job): DDL in {db}.
--   dispatch_bi              BI tools: SELECT on the factsheet views and dispatch_public.
-- statement-break
CREATE ROLE IF NOT EXISTS dispatch_ingest_writer
-- statement-break
-- The only write: batches into the raw table. The materialized views (unit_alerts_mv,
-- incident_facts_mv, ingest_offsets_mv) write their targets as their definer (the migrating
-- user): `default_materialized_view_sql_security = DEFINER` since 24.2. On 24.1, which has no
-- SQL SECURITY yet, also grant INSERT ON {db}.unit_alerts, {db}.incident_facts, {db}.ingest_offsets.
GRANT INSERT ON {db}.dispatch_events TO dispatch_ingest_writer
-- statement-break
-- With validation on (24.1+), the client reads the table's columns (DESCRIBE) before inserting.
GRANT SHOW COLUMNS ON {db}.dispatch_events TO dispatch_ingest_writer
-- statement-break
-- `run` refuses to start while migrations are pending: it reads schema_migrations.
GRANT SELECT ON {db}.schema_migrations TO dispatch_ingest_writer
-- statement-break
-- `audit` (offsets below the committed one in ClickHouse?) and `report landed`.
GRANT SELECT ON {db}.dispatch_events TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.ingest_offsets TO dispatch_ingest_writer
-- statement-break
-- `report factsheet` reads the views. Plain views run as the invoker
-- (`default_normal_view_sql_security = INVOKER`), so the rollup tables they read need SELECT too.
GRANT SELECT ON {db}.mmt_calls TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.mmt_factsheet_year TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.mmt_factsheet_month TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.mmt_station_location TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.mmt_cancel_reasons TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.unit_alerts TO dispatch_ingest_writer
-- statement-break
GRANT SELECT ON {db}.incident_facts TO dispatch_ingest_writer
-- statement-break
CREATE USER IF NOT EXISTS dispatch_ingest IDENTIFIED WITH sha256_password BY '{pipeline_password}' DEFAULT ROLE dispatch_ingest_writer
-- statement-break
GRANT dispatch_ingest_writer TO dispatch_ingest
-- statement-break
CREATE ROLE IF NOT EXISTS dispatch_ingest_migrator
-- statement-break
-- Migrations create the database and its tables and views, alter tables (0002), backfill with
-- INSERT ... SELECT (0003, 0004) and record themselves in schema_migrations and
-- schema_migration_steps. Concurrent migrators take turns by creating and dropping the table
-- schema_migrations_lock (DROP TABLE is for that table).
GRANT CREATE DATABASE ON {db}.* TO dispatch_ingest_migrator
-- statement-break
GRANT CREATE TABLE, CREATE VIEW, ALTER TABLE, ALTER VIEW, DROP TABLE, INSERT, SELECT, SHOW ON {db}.* TO dispatch_ingest_migrator
-- statement-break
CREATE USER IF NOT EXISTS dispatch_ingest_migrate IDENTIFIED WITH sha256_password BY '{migrator_password}' DEFAULT ROLE dispatch_ingest_migrator
-- statement-break
GRANT dispatch_ingest_migrator TO dispatch_ingest_migrate
-- statement-break
CREATE ROLE IF NOT EXISTS dispatch_bi_reader
-- statement-break
-- The factsheet views BI tools query (docs/rollups.md) and, because plain views run as the
-- invoker, the two rollup tables under them; not the raw table with its per-event rows.
GRANT SELECT ON {db}.mmt_calls TO dispatch_bi_reader
-- statement-break
GRANT SELECT ON {db}.mmt_factsheet_year TO dispatch_bi_reader
-- statement-break
GRANT SELECT ON {db}.mmt_factsheet_month TO dispatch_bi_reader
-- statement-break
GRANT SELECT ON {db}.mmt_station_location TO dispatch_bi_reader
-- statement-break
GRANT SELECT ON {db}.mmt_cancel_reasons TO dispatch_bi_reader
-- statement-break
GRANT SELECT ON {db}.unit_alerts TO dispatch_bi_reader
-- statement-break
GRANT SELECT ON {db}.incident_facts TO dispatch_bi_reader
-- statement-break
-- The published, suppressed municipality report (database dispatch_public, migration 0005).
GRANT SELECT ON dispatch_public.* TO dispatch_bi_reader
-- statement-break
CREATE USER IF NOT EXISTS dispatch_bi IDENTIFIED WITH sha256_password BY '{bi_password}' DEFAULT ROLE dispatch_bi_reader SETTINGS readonly = 1
-- statement-break
GRANT dispatch_bi_reader TO dispatch_bi
