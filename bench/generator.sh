#!/usr/bin/env bash
# Generator throughput (issue #13): `generate national --scale SCALE` flat out into fresh topics
# (three partitions each, plain Avro), RUNS times; messages a second from the process's start to
# its exit (every message acknowledged by the broker), the generator's CPU seconds and Kafka's.
#
#   bash bench/generator.sh                       SCALE=0.2 RUNS=3, release build
#   SCALE=0.01 RUNS=1 BIN=target/debug/dispatch-ingest bash bench/generator.sh   (a quick try)
# A benchmark, not a test: nothing here is part of deploy/local/test.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scale="${SCALE:-0.2}"
runs="${RUNS:-3}"

kafka_pid="$(cat "$STATE_DIR/kafka/kafka.pid")"
export RUST_LOG=warn
export DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"

results=()
for r in $(seq 1 "$runs"); do
    run="gen$(date +%s)r$r"
    topics=()
    for s in "${streams[@]}"; do
        t="$run.${topic_suffix[$s]}"
        topics+=("$t")
        export "DISPATCH_INGEST__TOPICS__${s^^}__NAME=$t"
    done
    KAFKA_TOPICS="${topics[*]}" bash deploy/local/kafka.sh topics >/dev/null 2>&1
    k0="$(cpu_of "$kafka_pid")"
    t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S %M' -o "$STATE_DIR/$run.time" \
        "$bin" generate national --scale "$scale" --seed "$r" >"$STATE_DIR/$run.out" 2>/dev/null
    t1=$(date +%s.%N)
    k1="$(cpu_of "$kafka_pid")"
    n="$(awk '/^produced/ {print $2}' "$STATE_DIR/$run.out")"
    read -r user sys maxrss <"$STATE_DIR/$run.time"
    line="$(python3 -c "
n, t0, t1, u, s, k0, k1, m = $n, $t0, $t1, $user, $sys, $k0, $k1, $maxrss
print(f'run $r: {n:,} messages in {t1 - t0:.2f} s, {n / (t1 - t0):,.0f} msg/s; CPU per million: generator {(u + s) / n * 1e6:.2f} s, Kafka {(k1 - k0) / n * 1e6:.2f} s; generator peak RSS {m / 1024:.0f} MB')
")"
    echo "$line"
    results+=("$(python3 -c "print($n / ($t1 - $t0))")")
done
python3 -c "
import statistics
r = [$(IFS=,; echo "${results[*]}")]
print(f'median over {len(r)} runs: {statistics.median(r):,.0f} msg/s (target >= 300,000)')
"
