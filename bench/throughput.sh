#!/usr/bin/env bash
# Throughput benchmark (issue #13): drain pre-loaded topics into a fresh database, dispatch-ingest
# (Avro and JSON topics) against ClickHouse's own Kafka engine on the same events, in one run.
#
#   bash bench/throughput.sh                    SCALE=0.2 RUNS=3 on the local stack, release build
#   SCALE=0.01 RUNS=1 BIN=target/debug/dispatch-ingest bash bench/throughput.sh   (a quick try)
#
# What it does:
#   1. Pre-loads, once per SCALE and SEED, `generate national --scale SCALE --seed SEED` into two
#      topic sets with three partitions each: bench-<tag>.avro.<stream> (plain Avro, the default
#      format) and bench-<tag>.json.<stream> (JSON, the same events). A marker file in $STATE_DIR
#      remembers the message count; delete it (or change SEED) to load again.
#   2. Per run and contender, a fresh database and a fresh consumer group from the earliest offset:
#      - `dispatch-ingest run` (Avro, then JSON), full model: raw table, rollups, ingest_offsets;
#        done when ingest_offsets holds every message;
#      - the Kafka engine: per stream a Kafka table (JSONEachRow), a MergeTree table of the same
#        columns and a materialized view between them (created by this script); done when the five
#        tables hold every message.
#      Wall time from the start of the contender (process start, or the CREATE of the views) to the
#      last row countable; CPU seconds of the contender's process and of clickhouse-server over the
#      same interval from /proc/<pid>/stat; peak RSS (VmHWM) of dispatch-ingest.
#   3. Prints one line per run and contender, then medians per contender and the ratios of the
#      medians, and appends all of it with machine, versions and commit to bench/RESULTS.md
#      (APPEND=0 to only print). CONTENDERS="avro json engine" (default) picks and orders them.
# Timings are a benchmark, not a test: nothing here is part of deploy/local/test.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scale="${SCALE:-0.2}"
seed="${SEED:-1}"
year="${YEAR:-2024}"
runs="${RUNS:-3}"
append="${APPEND:-1}"
metrics_port="${BENCH_METRICS_PORT:-9466}"
tag="s${scale//./_}-seed$seed-y$year"

ch_pid="$(cat "$STATE_DIR/clickhouse/clickhouse.pid")"
topic() { echo "bench-$tag.$1.${topic_suffix[$2]}"; }

topics_env() {
    # Environment that points dispatch-ingest at one topic set in one format.
    local format="$1" s up
    for s in "${streams[@]}"; do
        up="${s^^}"
        echo "DISPATCH_INGEST__TOPICS__${up}__NAME=$(topic "$format" "$s")"
        echo "DISPATCH_INGEST__TOPICS__${up}__FORMAT=$format"
    done
}

preload() {
    local marker="$STATE_DIR/bench-$tag.messages" format s out n total=""
    if [ -f "$marker" ]; then
        cat "$marker"
        return 0
    fi
    for format in avro json; do
        for s in "${streams[@]}"; do
            KAFKA_TOPICS="$(topic "$format" "$s")" bash deploy/local/kafka.sh topics >/dev/null
        done
        echo "pre-loading national $year x $scale (seed $seed) as $format" >&2
        out="$(env $(topics_env "$format") DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP" \
            RUST_LOG=warn "$bin" generate national --year "$year" --scale "$scale" --seed "$seed")"
        n="$(echo "$out" | awk '/^produced/ {print $2}')"
        [ -n "$n" ] || { echo "generator printed no 'produced' line:" >&2; echo "$out" >&2; exit 1; }
        if [ -n "$total" ] && [ "$total" != "$n" ]; then
            echo "the Avro and JSON sets differ: $total vs $n messages" >&2
            exit 1
        fi
        total="$n"
    done
    echo "$total" >"$marker"
    echo "$total"
}

messages="$(preload)"
echo "topics bench-$tag.{avro,json}.*: $messages messages each" >&2

results=()
record() { results+=("$*"); echo "$*"; }

run_pipeline() {
    local format="$1" run="$2" db pid t0 t1 ch0 ch1 own rss
    db="bench_${format}_${run}_$$"
    q "DROP DATABASE IF EXISTS $db" >/dev/null
    local envs=(
        $(topics_env "$format")
        RUST_LOG=warn
        DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"
        DISPATCH_INGEST__KAFKA__GROUP_ID="$db"
        DISPATCH_INGEST__KAFKA__AUTO_OFFSET_RESET=earliest
        DISPATCH_INGEST__CLICKHOUSE__URL="$CLICKHOUSE_URL"
        DISPATCH_INGEST__CLICKHOUSE__DATABASE="$db"
        DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:$metrics_port"
    )
    env "${envs[@]}" "$bin" migrate >/dev/null
    ch0="$(cpu_of "$ch_pid")"
    t0="$(date +%s.%N)"
    env "${envs[@]}" "$bin" run >"$STATE_DIR/bench-$db.log" 2>&1 &
    pid=$!
    until [ "$(q "SELECT count() FROM $db.ingest_offsets")" -ge "$messages" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "dispatch-ingest exited; log $STATE_DIR/bench-$db.log:" >&2
            tail -n 20 "$STATE_DIR/bench-$db.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    t1="$(date +%s.%N)"
    own="$(cpu_of "$pid")"
    ch1="$(cpu_of "$ch_pid")"
    rss="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
    kill -TERM "$pid"
    wait "$pid" || true
    q "DROP DATABASE IF EXISTS $db" >/dev/null
    rm -f "$STATE_DIR/bench-$db.log"
    record "$(awk -v c="dispatch-ingest-$format" -v r="$run" -v n="$messages" -v t0="$t0" -v t1="$t1" \
        -v own="$own" -v ch0="$ch0" -v ch1="$ch1" -v rss="$rss" 'BEGIN {
        w = t1 - t0; ch = ch1 - ch0
        printf "%s run %d: %.2f s, %.0f events/s, CPU per million events %.2f own + %.2f ClickHouse = %.2f s, peak RSS %.0f MB\n",
            c, r, w, n / w, own * 1e6 / n, ch * 1e6 / n, (own + ch) * 1e6 / n, rss / 1024 }')"
}

engine_columns() {
    # The JSON records' fields as ClickHouse columns (the Avro schemas' fields; see schemas/avro).
    case "$1" in
        call) echo "event_id String, incident_id String, dispatch_centre String, occurred_at UInt64, urgency String, municipality_code String, patient_age_years Nullable(Int32), triage_code Nullable(String)" ;;
        alert) echo "event_id String, incident_id String, dispatch_centre String, occurred_at UInt64, unit_id String, unit_type String, mmt_station Nullable(String), dispatch_kind String, urgency Nullable(String)" ;;
        cancel) echo "event_id String, incident_id String, dispatch_centre String, occurred_at UInt64, unit_id String, cancel_reason String" ;;
        on_scene) echo "event_id String, incident_id String, dispatch_centre String, occurred_at UInt64, unit_id String" ;;
        transport) echo "event_id String, incident_id String, dispatch_centre String, occurred_at UInt64, unit_id String, mode String, mmt_physician_accompanies UInt8, destination Nullable(String), patient_age_years Nullable(Int32), trauma Nullable(UInt8)" ;;
    esac
}

run_engine() {
    local run="$1" db s t0 t1 ch0 ch1 sum
    db="bench_engine_${run}_$$"
    q "DROP DATABASE IF EXISTS $db" >/dev/null
    q "CREATE DATABASE $db" >/dev/null
    for s in "${streams[@]}"; do
        q "CREATE TABLE $db.$s ($(engine_columns "$s")) ENGINE = MergeTree() ORDER BY (incident_id, occurred_at)" >/dev/null
    done
    # ClickHouse 18.16's Kafka engine starts a new group at the end of the topic (librdkafka's
    # default); commit the earliest offsets for its groups first, so it drains what is there.
    # (Before the Kafka tables exist: their consumers join the group at CREATE, and an active
    # group's offsets cannot be reset.)
    for s in "${streams[@]}"; do
        java -Xmx256m -XX:TieredStopAtLevel=1 -cp "$CACHE_DIR/kafka/libs/*" \
            -Dlog4j2.configurationFile="$REPO_ROOT/deploy/local/kafka/log4j2.xml" \
            org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
            --group "$db-$s" --topic "$(topic json "$s")" --reset-offsets --to-earliest --execute 2>&1 |
            grep -q "^$db-$s .* 0 *$" || { echo "could not reset group $db-$s to the earliest offsets" >&2; exit 1; }
    done
    ch0="$(cpu_of "$ch_pid")"
    t0="$(date +%s.%N)"
    for s in "${streams[@]}"; do
        q "CREATE TABLE $db.${s}_queue ($(engine_columns "$s")) ENGINE = Kafka('$KAFKA_BOOTSTRAP', '$(topic json "$s")', '$db-$s', 'JSONEachRow')" >/dev/null
        q "CREATE MATERIALIZED VIEW $db.${s}_mv TO $db.$s AS SELECT * FROM $db.${s}_queue" >/dev/null
    done
    local waited=0
    while :; do
        sum="$(q "SELECT sum(c) FROM (SELECT count() AS c FROM $db.call UNION ALL SELECT count() FROM $db.alert UNION ALL SELECT count() FROM $db.cancel UNION ALL SELECT count() FROM $db.on_scene UNION ALL SELECT count() FROM $db.transport)")"
        [ "$sum" -ge "$messages" ] && break
        sleep 0.1
        waited=$((waited + 1))
        if [ "$waited" -ge 6000 ]; then
            echo "the Kafka engine did not drain the topics within 10 minutes ($sum of $messages rows)" >&2
            exit 1
        fi
    done
    t1="$(date +%s.%N)"
    ch1="$(cpu_of "$ch_pid")"
    for s in "${streams[@]}"; do q "DROP TABLE $db.${s}_mv" >/dev/null; done
    q "DROP DATABASE $db" >/dev/null
    record "$(awk -v r="$run" -v n="$messages" -v t0="$t0" -v t1="$t1" -v ch0="$ch0" -v ch1="$ch1" 'BEGIN {
        w = t1 - t0; ch = ch1 - ch0
        printf "kafka-engine run %d: %.2f s, %.0f events/s, CPU per million events %.2f (all in ClickHouse)\n",
            r, w, n / w, ch * 1e6 / n }')"
}

for run in $(seq 1 "$runs"); do
    for c in ${CONTENDERS:-avro json engine}; do
        case "$c" in
            avro | json) run_pipeline "$c" "$run" ;;
            engine) run_engine "$run" ;;
            *) echo "unknown contender $c (CONTENDERS: avro json engine)" >&2; exit 2 ;;
        esac
    done
done

summary="$(printf '%s\n' "${results[@]}" | python3 -c '
import re, statistics, sys
rows = {}
for line in sys.stdin:
    m = re.match(r"(\S+) run \d+: ([\d.]+) s, (\d+) events/s, CPU per million events ([\d.]+)(?: own \+ ([\d.]+) ClickHouse = ([\d.]+))?", line)
    if m:
        c, wall, eps, a, b, tot = m.groups()
        rows.setdefault(c, []).append((float(wall), float(eps), float(tot or a)))
med = {c: tuple(statistics.median(x[i] for x in v) for i in range(3)) for c, v in rows.items()}
for c, (wall, eps, cpu) in med.items():
    print(f"median {c}: {wall:.2f} s, {eps:,.0f} events/s, {cpu:.2f} CPU-s per million events (total)")
eng = med.get("kafka-engine")
for c, (wall, eps, cpu) in med.items():
    if eng and c != "kafka-engine":
        print(f"ratio {c} / kafka-engine: throughput {eps / eng[1]:.2f}x, CPU {cpu / eng[2]:.2f}x")
')"
echo "$summary"

if [ "$append" = 1 ]; then
    # Before the block: its redirection makes RESULTS.md itself a change.
    dirty="$(git diff --quiet || echo ' (with uncommitted changes)')"
    server="ClickHouse $(q 'SELECT version()')"
    {
        echo
        echo "## Throughput: dispatch-ingest against the Kafka engine ($(date -u +%Y-%m-%dT%H:%MZ))"
        echo
        echo "\`SCALE=$scale SEED=$seed YEAR=$year RUNS=$runs BIN=$bin bash bench/throughput.sh\` at commit"
        echo "$(git rev-parse --short HEAD)$dirty, $messages messages per topic set;"
        echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
        echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg); $server;"
        echo "Kafka $(ls "$CACHE_DIR/kafka/libs" | grep -o '^kafka-clients-[0-9.]*' | head -1 | sed 's/kafka-clients-//'); $(rustc --version)."
        echo
        echo '```'
        printf '%s\n' "${results[@]}"
        echo "$summary"
        echo '```'
    } >>bench/RESULTS.md
    echo "appended to bench/RESULTS.md" >&2
fi
