#!/usr/bin/env bash
# Benchmark of the municipality report (issue #11) on the local stack; timings are not tests.
#
# 1. A national year (YEAR, default 2025; SCALE, default 1 = the whole country, about 5.6 million
#    messages) generated into the local Kafka with `generate national` and ingested by a release
#    build into a fresh database.
# 2. Publishing that year from the raw events: `report municipalities --year YEAR --publish`,
#    RUNS times (default 3; the first run publishes, the others re-publish over it, as a re-run
#    after late events would), median and all runs printed. Target: under 60 s.
# 3. Ten years published: the generator covers 2023-2026 only, so the other nine years
#    (YEAR-9 .. YEAR-1) are copies of YEAR's published rows with the year shifted, made in SQL
#    (INSERT ... SELECT); the tables then hold ten full years of equal size.
# 4. Reading the published report as a BI tool would, READS times each (default 11), median
#    printed (curl's time_total over HTTP, rows in JSONEachRow): one year's cells, one
#    municipality over all ten years, and the whole table. Target: under 1 s.
#
# Writes nothing to the shared servers but its own database and `<db>_public`, dropped at the end
# (KEEP=1 keeps them). Run it by hand; say how loaded the machine was when quoting the numbers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../deploy/local/env.sh"
bash "$REPO_ROOT/deploy/local/up.sh" >/dev/null
cd "$REPO_ROOT"
# BIN=target/debug/dispatch-ingest tries the script itself quickly (timings then mean nothing).
if [ -z "${BIN:-}" ]; then cargo build --release --quiet --bin dispatch-ingest; fi
bin="${BIN:-$REPO_ROOT/target/release/dispatch-ingest}"
year="${YEAR:-2025}"
scale="${SCALE:-1}"
runs="${RUNS:-3}"
reads="${READS:-11}"
run="mbench$(date +%s)"
public="${run}_public"
export RUST_LOG=warn
export DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"
export DISPATCH_INGEST__CLICKHOUSE__URL="$CLICKHOUSE_URL"
export DISPATCH_INGEST__CLICKHOUSE__DATABASE="$run"
export DISPATCH_INGEST__KAFKA__GROUP_ID="$run"
export DISPATCH_INGEST__KAFKA__AUTO_OFFSET_RESET=latest
export DISPATCH_INGEST__REPORT__PUBLIC_DATABASE="$public"
export DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:${BENCH_METRICS_PORT:-9466}"
q() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
median() { sort -n | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m}'; }
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    if [ "${KEEP:-0}" != 1 ]; then
        q "DROP DATABASE IF EXISTS $run" >/dev/null || true
        q "DROP DATABASE IF EXISTS $public" >/dev/null || true
        rm -f "$STATE_DIR/$run-pipeline.log"
    else
        echo "kept databases $run and $public, pipeline log $STATE_DIR/$run-pipeline.log" >&2
    fi
}
trap cleanup EXIT
echo "commit $(git rev-parse --short HEAD), ClickHouse $(q 'SELECT version()'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

"$bin" migrate >/dev/null
"$bin" run >"$STATE_DIR/$run-pipeline.log" 2>&1 &
pid=$!
until curl -fsS "http://$DISPATCH_INGEST__TELEMETRY__LISTEN/metrics" 2>/dev/null | grep -q 'rebalances_total{kind="assign"}'; do sleep 0.2; done
t0=$(date +%s.%N)
out="$("$bin" generate national --year "$year" --scale "$scale" --seed 1)"
messages="$(echo "$out" | awk '/^produced/ {print $2}')"
until [ "$(q "SELECT count() FROM $run.ingest_offsets")" -ge "$messages" ]; do sleep 1; done
t1=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid" || true
pid=
incidents="$(q "SELECT uniqExact(incident_id) FROM $run.response_units")"
echo "national year $year x $scale: $messages messages, $incidents incidents, generated and ingested in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"

times=()
for i in $(seq 1 "$runs"); do
    s=$(date +%s.%N)
    "$bin" report municipalities --year "$year" --publish
    e=$(date +%s.%N)
    times+=("$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.2f", b - a}')")
done
echo "publish $year from the raw events (s, $runs runs): ${times[*]}; median $(printf '%s\n' "${times[@]}" | median) s"

cells="municipality_response_times"
cols="quarter, period, area_level, area_code, area_name, region_code, urgency, deployments, mean_seconds, median_seconds, p90_seconds, p95_seconds, share_within_15, suppressed, suppression_reason, suppression_reason_nl, percentiles_withheld, meets_norm"
rest="area_level, area_code, area_name, region_code, urgency, deployments, mean_seconds, median_seconds, p90_seconds, p95_seconds, share_within_15, suppressed, suppression_reason, suppression_reason_nl, percentiles_withheld, meets_norm"
for k in $(seq 1 9); do
    y=$((year - k))
    q "INSERT INTO $public.$cells (year, quarter, period, $rest) SELECT toUInt16($y), quarter, replaceRegexpOne(period, '^[0-9]+', '$y'), $rest FROM $public.$cells WHERE year = $year" >/dev/null
    q "INSERT INTO $public.municipality_response_exclusions (year, reason, urgency, incidents) SELECT toUInt16($y), reason, urgency, incidents FROM $public.municipality_response_exclusions WHERE year = $year" >/dev/null
done
echo "published years: $(q "SELECT groupArray(y) FROM (SELECT DISTINCT year AS y FROM $public.$cells ORDER BY y)"), $(q "SELECT count() FROM $public.$cells") rows"

read_bench() {
    local label="$1" sql="$2" t=() rows
    rows="$(q "$sql FORMAT JSONEachRow" | wc -l)"
    for _ in $(seq 1 "$reads"); do
        t+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$CLICKHOUSE_URL/" --data-binary "$sql FORMAT JSONEachRow")")
    done
    echo "read $label ($rows rows, $reads runs): median $(printf '%s\n' "${t[@]}" | median) s, max $(printf '%s\n' "${t[@]}" | sort -n | tail -1) s"
}
read_bench "one year's cells" "SELECT * FROM $public.$cells WHERE year = $year ORDER BY quarter, urgency, area_level, area_code"
read_bench "one municipality, ten years" "SELECT * FROM $public.$cells WHERE area_code = 'GM0363' ORDER BY year, quarter, urgency"
read_bench "all ten years" "SELECT * FROM $public.$cells"
read_bench "regional A1 norm check, ten years" "SELECT year, area_code, share_within_15, meets_norm FROM $public.$cells WHERE area_level = 'region' AND urgency = 'A1' AND quarter = 0 ORDER BY year, area_code"
