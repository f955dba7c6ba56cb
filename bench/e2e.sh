#!/usr/bin/env bash
# End-to-end benchmark on the local stack: a national ambulance year (or a fraction: SCALE, default
# 0.1) generated into Kafka, ingested by a release build into a fresh ClickHouse database. Prints
# generation and ingestion time, events per second, and the pipeline's peak resident memory.
# Not part of the test suite (timings are not tests); run it by hand on an idle machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../deploy/local/env.sh"
bash "$REPO_ROOT/deploy/local/up.sh" >/dev/null
cd "$REPO_ROOT"
cargo build --release --quiet --bin dispatch-ingest
bin="$REPO_ROOT/target/release/dispatch-ingest"
scale="${SCALE:-0.1}"
run="bench$(date +%s)"
export RUST_LOG=warn
export DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"
export DISPATCH_INGEST__CLICKHOUSE__URL="$CLICKHOUSE_URL"
export DISPATCH_INGEST__CLICKHOUSE__DATABASE="$run"
export DISPATCH_INGEST__KAFKA__GROUP_ID="$run"
export DISPATCH_INGEST__KAFKA__AUTO_OFFSET_RESET=latest
export DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:${BENCH_METRICS_PORT:-9465}"
q() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
"$bin" migrate >/dev/null
"$bin" run >"$STATE_DIR/bench-pipeline.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; q "DROP DATABASE IF EXISTS $run" >/dev/null || true' EXIT
until curl -fsS "http://$DISPATCH_INGEST__TELEMETRY__LISTEN/metrics" 2>/dev/null | grep -q 'rebalances_total{kind="assign"}'; do sleep 0.2; done
t0=$(date +%s.%N)
out="$("$bin" generate national --scale "$scale" --seed 1)"
t1=$(date +%s.%N)
messages="$(echo "$out" | awk '/^produced/ {print $2}')"
until [ "$(q "SELECT count() FROM $run.ingest_offsets")" -ge "$messages" ]; do sleep 0.5; done
t2=$(date +%s.%N)
rss="$(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"
python3 - "$messages" "$t0" "$t1" "$t2" "$rss" "$scale" <<'PY'
import sys
n, t0, t1, t2 = int(sys.argv[1]), *map(float, sys.argv[2:5])
print(f"national year x {sys.argv[6]}: {n} messages")
print(f"generate -> Kafka: {t1 - t0:.1f} s ({n / (t1 - t0):,.0f} msg/s)")
print(f"ingested (Kafka -> ClickHouse, from the generator's start): {t2 - t0:.1f} s ({n / (t2 - t0):,.0f} msg/s)")
print(f"pipeline peak resident memory: {sys.argv[5]}")
PY
