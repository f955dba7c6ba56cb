#!/usr/bin/env bash
# Dead-lettering throughput (issues #10 and #13): how fast a run of bad records goes to the
# dead-letter topic, which bounds how long such a run stalls its partitions.
#
#   bash bench/dead_letter.sh                  N=20000 records, release build
#   BIN=/tmp/old-build N=5000 bash bench/dead_letter.sh   (another binary, to compare)
#
# What it does: fresh topics (three partitions each) and database; N records that are not JSON
# (kcat, one line each) into the call topic, spread over its partitions by key; then
# `dispatch-ingest run` with the default settings (JSON wire format) and the time until the
# pipeline's counter `dispatch_ingest_records_dead_lettered_total` reaches N. Prints records per
# second over that time. A benchmark, not a test: nothing here is part of deploy/local/test.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

n="${N:-20000}"
metrics_port="${BENCH_METRICS_PORT:-9468}"
run="dlq$(date +%s)"

own_topics
for s in "${streams[@]}"; do
    export "DISPATCH_INGEST__TOPICS__${s^^}__FORMAT=json"
done

seq 1 "$n" | awk '{ print $1 ":not json " $1 }' |
    kcat -P -q -b "$KAFKA_BOOTSTRAP" -t "$run.calls" -K:
"$bin" migrate >/dev/null
start=$(date +%s.%N)
"$bin" run >"$STATE_DIR/$run-pipeline.log" 2>&1 &
pid=$!
cleanup() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    q "DROP DATABASE IF EXISTS $run" >/dev/null || true
}
trap cleanup EXIT
metrics() { curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null || true; }
dead=0
while [ "$dead" -lt "$n" ]; do
    kill -0 "$pid" || { echo "the pipeline exited; log: $STATE_DIR/$run-pipeline.log" >&2; exit 1; }
    sleep 0.5
    dead=$(metrics | awk '/^dispatch_ingest_records_dead_lettered_total/ { s += $2 } END { print s + 0 }')
done
end=$(date +%s.%N)
python3 -c "
n, t = $n, $end - $start
print(f'dead-lettered {n} records in {t:.1f} s (from start, incl. startup): {n / t:,.0f} records/s; binary $bin')"
