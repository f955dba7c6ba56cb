#!/usr/bin/env bash
# The main job on a local stack: start Kafka + ClickHouse, apply the migrations, run the
# pipeline, feed it sample incidents with the generator, wait until every event landed, print
# what landed in ClickHouse, and stop the pipeline gracefully.
#
# Environment: DEMO_INCIDENTS (default 2000), plus everything in env.sh (ports, ...).
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
export DISPATCH_INGEST__KAFKA__GROUP_ID="${DEMO_GROUP:-dispatch-ingest-demo}"
export DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:${DEMO_METRICS_PORT:-9464}"
export DISPATCH_INGEST__TELEMETRY__LOG_FORMAT=text
incidents="${DEMO_INCIDENTS:-2000}"
seed="$(date +%s)"

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
log "pipeline running (pid $pipeline_pid, log $pipeline_log, metrics http://$DISPATCH_INGEST__TELEMETRY__LISTEN/metrics)"

out="$(RUST_LOG="${RUST_LOG:-warn}" "$bin" generate sample --incidents "$incidents" --seed "$seed")"
echo "$out"
produced="$(echo "$out" | awk '/^produced/ {print $2}')"

query() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
landed=0
for _ in $(seq 1 300); do
    landed="$(query "SELECT uniqExact(event_id) FROM dispatch.dispatch_events WHERE incident_id LIKE 'INC-$seed-%'")"
    [ "$landed" -ge "$produced" ] && break
    sleep 0.5
done
log "landed $landed of $produced events of this run"
kill -TERM "$pipeline_pid"
wait "$pipeline_pid" || { log "pipeline exited non-zero"; tail -20 "$pipeline_log"; exit 1; }
trap - EXIT
tail -1 "$pipeline_log"

echo
echo "== What landed in ClickHouse (all demo runs; duplicates collapsed) =="
RUST_LOG="${RUST_LOG:-warn}" "$bin" report landed
echo
echo "== This run's incidents by urgency =="
query "SELECT urgency, count() AS calls FROM dispatch.dispatch_events FINAL WHERE event_type = 'call' AND incident_id LIKE 'INC-$seed-%' GROUP BY urgency ORDER BY urgency FORMAT PrettyCompact"
[ "$landed" -ge "$produced" ] || { log "not every event landed"; exit 1; }
