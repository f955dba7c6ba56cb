#!/usr/bin/env bash
# The municipality report part of the demo (called by demo.sh after the factsheet): a scaled
# national year through Kafka into its own ClickHouse database `demo_municipalities`, published to
# `demo_public`, and a short summary per safety region printed.
#
# Environment: DEMO_NATIONAL_YEAR (2023-2026, default 2025), DEMO_NATIONAL_SCALE (default 0.01),
# plus everything in env.sh. Expects the local stack running and target/debug/dispatch-ingest built
# (demo.sh does both).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
cd "$REPO_ROOT"
bin="$REPO_ROOT/target/debug/dispatch-ingest"
year="${DEMO_NATIONAL_YEAR:-2025}"
scale="${DEMO_NATIONAL_SCALE:-0.01}"
seed="$(date +%s)"
db=demo_municipalities

export DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"
export DISPATCH_INGEST__CLICKHOUSE__URL="$CLICKHOUSE_URL"
export DISPATCH_INGEST__CLICKHOUSE__DATABASE="$db"
export DISPATCH_INGEST__REPORT__PUBLIC_DATABASE=demo_public
export DISPATCH_INGEST__KAFKA__GROUP_ID="dispatch-ingest-demo-national-$seed"
export DISPATCH_INGEST__KAFKA__AUTO_OFFSET_RESET=latest
export DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:${DEMO_METRICS_PORT:-9464}"
export DISPATCH_INGEST__TELEMETRY__LOG_FORMAT=text
query() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
query "DROP DATABASE IF EXISTS $db" >/dev/null
RUST_LOG="${RUST_LOG:-warn}" "$bin" migrate

pipeline_log="$STATE_DIR/demo-national-pipeline.log"
RUST_LOG="${RUST_LOG:-info}" "$bin" run >"$pipeline_log" 2>&1 &
pipeline_pid=$!
trap 'kill -TERM $pipeline_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
    curl -fsS "http://$DISPATCH_INGEST__TELEMETRY__LISTEN/metrics" 2>/dev/null | grep -q '^dispatch_ingest_rebalances_total{kind="assign"}' && break
    kill -0 "$pipeline_pid" 2>/dev/null || { cat "$pipeline_log"; exit 1; }
    sleep 0.2
done
out="$(RUST_LOG="${RUST_LOG:-warn}" "$bin" generate national --year "$year" --scale "$scale" --seed "$seed")"
echo "$out"
sent="$(echo "$out" | awk '/^produced/ {print $2}')"
landed=0
for _ in $(seq 1 600); do
    landed="$(query "SELECT uniqExact(event_id) FROM $db.dispatch_events")"
    [ "$landed" -ge "$sent" ] && break
    sleep 0.5
done
kill -TERM "$pipeline_pid"
wait "$pipeline_pid" || { log "pipeline exited non-zero"; tail -20 "$pipeline_log"; exit 1; }
trap - EXIT
[ "$landed" -ge "$sent" ] || { log "landed $landed of $sent events"; exit 1; }

echo
echo "== Municipality report $year (scale $scale): the safety regions =="
RUST_LOG="${RUST_LOG:-warn}" "$bin" report municipalities --year "$year" --publish
RUST_LOG="${RUST_LOG:-warn}" "$bin" report municipalities --year "$year" --summary
log "per municipality: $bin report municipalities --year $year [--region VR09] [--format csv] (database $db)"
