#!/usr/bin/env bash
# The integration tests a second time, against ClickHouse 26.9 (the chdb engine behind the minimal
# HTTP front in tests/chdb_http/chdb_http.py) instead of the local 18.16 server: end-to-end
# ingestion of all five streams, the restart and DLQ paths, the rejected-row isolation, the
# factsheet acceptance test and the audits inside them, the municipality report's acceptance test
# (tests/pipeline_e2e.rs, tests/factsheet_acceptance.rs, tests/municipality_report.rs). Not run
# here, and said so: municipality_report's BI-user test, which brings up its own private 18.16
# server (users.xml) and so never talks to this fixture; the 24.x+ grants are checked on 26.9 by
# tests/sql/check_grants.py above. The service runs with the default `clickhouse.validation =
# "auto"`, which turns the crate's row validation on for this 24.1+ engine; the tests assert that.
# Kafka is the shared local broker. The fixture gets a fresh data directory and is stopped (by its
# pid) at the end. First tests/sql/check_grants.py checks deploy/clickhouse/grants-24x.sql on 26.9.
# Extra arguments go to the test binaries (e.g. a test name filter). CHDB_HTTP_TRACE=1 logs every
# request in the fixture log, CHDB_HTTP_KEEP=1 keeps that log and the data directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../deploy/local/env.sh"
cd "$REPO_ROOT"
python="$(bash deploy/local/pyenv.sh)"
"$python" tests/sql/check_grants.py
mkdir -p "$STATE_DIR"
dir="$(mktemp -d "$STATE_DIR/chdb-http.XXXXXX")"
"$python" "$here/chdb_http.py" --data-dir "$dir/data" --port-file "$dir/port" >"$dir/fixture.log" 2>&1 &
pid=$!
stop() {
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    if [ "${status:-1}" = 0 ] && [ "${CHDB_HTTP_KEEP:-0}" != 1 ]; then rm -rf "$dir"; else echo "chdb_http: fixture log and data kept in $dir" >&2; fi
}
trap 'status=$?; stop' EXIT
for _ in $(seq 1 120); do
    [ -s "$dir/port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/fixture.log" >&2; exit 1; }
    sleep 0.5
done
[ -s "$dir/port" ] || { echo "chdb_http: fixture did not start within 60 s" >&2; cat "$dir/fixture.log" >&2; exit 1; }
export CLICKHOUSE_URL="http://127.0.0.1:$(cat "$dir/port")"
version="$(curl -fsS "$CLICKHOUSE_URL/?query=SELECT%20version()")"
echo "chdb_http: ClickHouse $version at $CLICKHOUSE_URL"
case "$version" in 2[4-9].*|[3-9][0-9].*) ;; *) echo "chdb_http: expected a 24.1+ engine, got $version" >&2; exit 1 ;; esac
"$python" "$here/selftest.py" "$CLICKHOUSE_URL"
echo "chdb_http: NOT RUN on 26.9: municipality_report::bi_user_reads_the_publication_and_nothing_else (private 18.16 server with users.xml, not this fixture)" >&2
cargo test ${CHDB_HTTP_TESTS:---test pipeline_e2e --test factsheet_acceptance --test municipality_report --test sink_partitions} -- \
    --skip bi_user_reads_the_publication_and_nothing_else "$@"
