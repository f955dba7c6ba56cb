-- The read-only BI user of the published municipality report on ClickHouse 24.x and later (SQL
-- access control). It may read the public database and nothing else: not the raw events, not the
-- rollups. Run once as an administrator, with a password of your own:
--
--   clickhouse-client --multiquery < deploy/clickhouse/bi_public.sql
--
-- On ClickHouse 18.16 (no SQL users) the same user is defined in users.xml with
-- <allow_databases><database>dispatch_public</database></allow_databases> and the readonly
-- profile; deploy/local/clickhouse.sh writes it for the local stack. If report.public_database
-- is not dispatch_public, change the database name below.
CREATE USER IF NOT EXISTS bi_public IDENTIFIED WITH sha256_password BY 'change-me'
    SETTINGS readonly = 1;
GRANT SELECT ON dispatch_public.* TO bi_public;
