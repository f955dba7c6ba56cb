//! `dispatch-ingest migrate` against the real local ClickHouse (issue #10, defect 12): migrators
//! started at the same moment on a fresh database all succeed and apply every migration once (the
//! lock table serialises them); a second run is a no-op; a migration that fails halfway names the
//! statement and what was applied, and the next run continues after the applied statements.
//! Before, concurrent migrators applied the same migrations together: `ADD COLUMN` failed in all
//! but one of them and backfills ran twice.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;

use dispatch_ingest::sink::{statements, MIGRATIONS, MIGRATION_LOCK_TABLE};

use common::TestEnv;

/// Per table of the database: its columns and types, in order.
async fn schema(env: &TestEnv, db: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let rows: Vec<(String, String, String)> = env
        .clickhouse()
        .query(&format!(
            "SELECT table, name, type FROM system.columns WHERE database = '{db}'"
        ))
        .fetch_all()
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (table, name, ty) in rows {
        out.entry(table).or_default().push((name, ty));
    }
    out
}

async fn query_u64s(env: &TestEnv, sql: &str) -> Vec<u64> {
    env.clickhouse().query(sql).fetch_all().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_apply_every_migration_once_and_a_rerun_is_a_no_op() {
    let env = TestEnv::new("migrace").await;
    let db = env.database.clone();
    let children: Vec<_> = (0..3)
        .map(|_| {
            env.cli(&["migrate"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied_by = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "a concurrent migrate failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        applied_by.push(stdout);
    }
    let appliers = applied_by.iter().filter(|o| o.contains("applied")).count();
    assert_eq!(appliers, 1, "exactly one migrator applies: {applied_by:?}");
    let per_version = query_u64s(
        &env,
        &format!("SELECT count() FROM {db}.schema_migrations GROUP BY version ORDER BY version"),
    )
    .await;
    assert_eq!(
        per_version,
        vec![1; MIGRATIONS.len()],
        "each migration recorded once"
    );
    let total: usize = MIGRATIONS
        .iter()
        .map(|m| statements(m.sql, &db).len())
        .sum();
    let steps = query_u64s(
        &env,
        &format!("SELECT count() FROM {db}.schema_migration_steps GROUP BY version, statement"),
    )
    .await;
    assert_eq!(steps.len(), total, "every statement recorded");
    assert!(
        steps.iter().all(|n| *n == 1),
        "no statement ran twice: {steps:?}"
    );

    // The schema is complete: the same as one migrator alone makes.
    let alone = TestEnv::new("migalone").await;
    let reference = alone.database.clone();
    alone.run_cli(&["migrate"]);
    let mut got = schema(&env, &db).await;
    let want = schema(&env, &reference).await;
    assert!(
        !got.contains_key(MIGRATION_LOCK_TABLE),
        "the lock is released"
    );
    got.remove(MIGRATION_LOCK_TABLE);
    assert_eq!(got, want);
    assert!(want["dispatch_events"]
        .iter()
        .any(|(c, _)| c == "urgency_vui"));

    let again = env.run_cli(&["migrate"]);
    assert!(again.contains("up to date, nothing to apply"), "{again}");
    let per_version = query_u64s(
        &env,
        &format!("SELECT count() FROM {db}.schema_migrations GROUP BY version ORDER BY version"),
    )
    .await;
    assert_eq!(per_version, vec![1; MIGRATIONS.len()]);
    alone.cleanup().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_failing_halfway_says_what_was_applied_and_the_rerun_continues_there() {
    let env = TestEnv::new("mighalf").await;
    let db = env.database.clone();
    let ch = env.clickhouse();
    // A table in the way of 0003's backfill: its structure is not the migration's.
    ch.query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .execute()
        .await
        .unwrap();
    ch.query(&format!(
        "CREATE TABLE {db}.incident_facts (x UInt8) ENGINE = Memory"
    ))
    .execute()
    .await
    .unwrap();
    let out = env.cli(&["migrate"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let m = MIGRATIONS.iter().find(|m| m.version == 3).unwrap();
    let total = statements(m.sql, &db).len();
    let at = err
        .split(&format!("migration {}, statement ", m.name))
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("the error names the migration and statement: {err}"));
    assert!(at > 1, "{err}");
    let before: Vec<String> = (1..at).map(|n| n.to_string()).collect();
    assert!(
        err.contains(&format!("statement {at} of {total} ("))
            && err.contains(&format!(
                "statements {} of this migration are applied",
                before.join(", ")
            ))
            && err.contains(&format!("continues at statement {at}")),
        "{err}"
    );
    let recorded = query_u64s(
        &env,
        &format!("SELECT toUInt64(statement) FROM {db}.schema_migration_steps WHERE version = 3 ORDER BY statement"),
    )
    .await;
    assert_eq!(recorded, (1..at as u64).collect::<Vec<_>>());
    let versions = query_u64s(
        &env,
        &format!("SELECT toUInt64(version) FROM {db}.schema_migrations ORDER BY version"),
    )
    .await;
    assert_eq!(versions, vec![1, 2]);

    // The operator replaces the table with the migration's own, and migrates again.
    let create = statements(m.sql, &db)
        .into_iter()
        .find(|s| s.contains(&format!("TABLE IF NOT EXISTS {db}.incident_facts")))
        .unwrap();
    ch.query(&format!("DROP TABLE {db}.incident_facts"))
        .execute()
        .await
        .unwrap();
    ch.query(&create).execute().await.unwrap();
    let done = env.run_cli(&["migrate"]);
    assert!(done.contains(m.name), "{done}");
    let steps = query_u64s(
        &env,
        &format!(
            "SELECT count() FROM {db}.schema_migration_steps WHERE version = 3 GROUP BY statement"
        ),
    )
    .await;
    assert_eq!(
        steps,
        vec![1; total],
        "the applied statements did not run again"
    );
    env.cleanup().await;
}
