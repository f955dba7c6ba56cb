#!/usr/bin/env bash
# The main job on a local stack: start Kafka + ClickHouse, apply the migrations, run the
# pipeline, feed it a year of MMT calls calibrated to the MMT factsheet (with duplicates and
# reordering), wait until every event landed, stop the pipeline gracefully, audit, and print the
# regenerated factsheet (Markdown on the terminal, HTML with charts in .local/).
#
# Environment: DEMO_YEAR (2023 or 2024, default 2024), plus everything in env.sh (ports, ...).
# Each run uses a fresh ClickHouse database `demo` and a new consumer group that starts at the
# end of the topics, so the report shows exactly this run's stream.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

bash "$here/install.sh"
bash "$here/up.sh"

cd "$REPO_ROOT"
log "building dispatch-ingest"
cargo build --quiet --bin dispatch-ingest
bin="$REPO_ROOT/target/debug/dispatch-ingest"

export DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"
export DISPATCH_INGEST__CLICKHOUSE__URL="$CLICKHOUSE_URL"
seed="$(date +%s)"
export DISPATCH_INGEST__CLICKHOUSE__DATABASE=demo
export DISPATCH_INGEST__KAFKA__GROUP_ID="dispatch-ingest-demo-$seed"
export DISPATCH_INGEST__KAFKA__AUTO_OFFSET_RESET=latest
export DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:${DEMO_METRICS_PORT:-9464}"
export DISPATCH_INGEST__TELEMETRY__LOG_FORMAT=text
curl -fsS "$CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS demo" >/dev/null
RUST_LOG="${RUST_LOG:-warn}" "$bin" migrate

mkdir -p "$STATE_DIR"
pipeline_log="$STATE_DIR/demo-pipeline.log"
RUST_LOG="${RUST_LOG:-info}" "$bin" run >"$pipeline_log" 2>&1 &
pipeline_pid=$!
trap 'kill -TERM $pipeline_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://$DISPATCH_INGEST__TELEMETRY__LISTEN/health" >/dev/null 2>&1 && break
    kill -0 "$pipeline_pid" 2>/dev/null || { cat "$pipeline_log"; exit 1; }
    sleep 0.2
done
# Produce only once the group has its partitions (it starts at the end of the topics).
for _ in $(seq 1 150); do
    curl -fsS "http://$DISPATCH_INGEST__TELEMETRY__LISTEN/metrics" 2>/dev/null | grep -q '^dispatch_ingest_rebalances_total{kind="assign"}' && break
    sleep 0.2
done
log "pipeline running (pid $pipeline_pid, log $pipeline_log, metrics http://$DISPATCH_INGEST__TELEMETRY__LISTEN/metrics)"

# A year of MMT calls calibrated to the MMT factsheet, sent with 1% duplicates and reordering.
year="${DEMO_YEAR:-2024}"
out="$(RUST_LOG="${RUST_LOG:-warn}" "$bin" generate mmt --year "$year" --seed "$seed" --duplicates 0.01 --shuffle-window 1000)"
echo "$out"
distinct="$(echo "$out" | awk '/^produced/ {print $4}')"

query() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
landed=0
for _ in $(seq 1 600); do
    landed="$(query "SELECT uniqExact(event_id) FROM demo.dispatch_events")"
    [ "$landed" -ge "$distinct" ] && break
    sleep 0.5
done
log "landed $landed of $distinct distinct events of this run"
kill -TERM "$pipeline_pid"
wait "$pipeline_pid" || { log "pipeline exited non-zero"; tail -20 "$pipeline_log"; exit 1; }
trap - EXIT
tail -1 "$pipeline_log"
[ "$landed" -ge "$distinct" ] || { log "not every event landed"; exit 1; }

echo
echo "== Completeness audit =="
RUST_LOG="${RUST_LOG:-warn}" "$bin" audit --since-first-ingested | tail -1
echo
echo "== MMT factsheet $year (regenerated from the stream) =="
report_html="$STATE_DIR/factsheet-$year.html"
RUST_LOG="${RUST_LOG:-warn}" "$bin" report factsheet --year "$year" --format html --out "$report_html"
RUST_LOG="${RUST_LOG:-warn}" "$bin" report factsheet --year "$year" --format md | sed '/data:image/d'
echo
log "the HTML report with its charts: $report_html"

# The municipality A0/A1 response-time report: a short summary per safety region.
bash "$here/demo-municipalities.sh"
