#!/usr/bin/env bash
# Freshness and memory at a steady input rate (issue #13): event-to-queryable latency at RATE
# messages a second for DURATION seconds, and the pipeline's resident memory over the run (the
# soak when DURATION is an hour).
#
#   bash bench/freshness.sh                          RATE=10000 DURATION=300, release build
#   DURATION=3600 bash bench/freshness.sh            the one-hour soak
#   RATE=2000 DURATION=30 BIN=target/debug/dispatch-ingest bash bench/freshness.sh   (a quick try)
#
# What it does:
#   1. Fresh topics (three partitions each), a fresh database, `dispatch-ingest run` with the
#      default settings (only addresses, names and the metrics port set), started before any
#      input and waited for until it has its partitions.
#   2. `generate national --rate RATE` into those topics, year after year (2023-2025, then again
#      with the next seed) while half a year's worth still fits in DURATION seconds;
#      SCALE is the fraction of a national year per invocation. The producer sets each record's
#      timestamp when it sends it.
#   3. Every 10 s: the pipeline's RSS (VmRSS) and CPU seconds, and ClickHouse's CPU seconds.
#   4. When every message is countable in ClickHouse (`ingest_offsets`), the pipeline's histogram
#      `dispatch_ingest_kafka_latency_seconds` (record timestamp -> insert acknowledged by
#      ClickHouse, i.e. queryable) gives the share of events queryable within 0.5/1/2 s exactly
#      (bucket bounds) and p50/p99 interpolated within their bucket, as Prometheus'
#      histogram_quantile does.
# Prints one block of results; the RSS series goes to $STATE_DIR/freshness-<run>.rss.tsv.
# A benchmark, not a test: nothing here is part of deploy/local/test.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rate="${RATE:-10000}"
duration="${DURATION:-300}"
# One invocation of the generator (a national year x SCALE, about 5.73 million messages at 1.0)
# lasts about DURATION at RATE, or a whole year when that is shorter; the loop starts another
# while at least half of one fits in DURATION.
scale="${SCALE:-$(python3 -c "print(round(min(1.0, $rate * $duration / 5.73e6), 4))")}"
per_run=$(python3 -c "print($scale * 5.73e6 / $rate)")
metrics_port="${BENCH_METRICS_PORT:-9467}"
run="fresh$(date +%s)"

ch_pid="$(cat "$STATE_DIR/clickhouse/clickhouse.pid")"

own_topics

"$bin" migrate >/dev/null
"$bin" run >"$STATE_DIR/$run-pipeline.log" 2>&1 &
pid=$!
sampler=""
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    q "DROP DATABASE IF EXISTS $run" >/dev/null || true
}
trap cleanup EXIT
metrics() { curl -fsS "http://127.0.0.1:$metrics_port/metrics"; }
until metrics 2>/dev/null | grep -q 'rebalances_total{kind="assign"}'; do sleep 0.2; done

rss_file="$STATE_DIR/$run.rss.tsv"
(
    printf 'seconds\trss_kb\tpipeline_cpu_s\tclickhouse_cpu_s\n'
    t0=$(date +%s)
    while kill -0 "$pid" 2>/dev/null; do
        printf '%s\t%s\t%s\t%s\n' "$(($(date +%s) - t0))" \
            "$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")" "$(cpu_of "$pid")" "$(cpu_of "$ch_pid")"
        sleep 10
    done
) >"$rss_file" &
sampler=$!

start=$(date +%s.%N)
cpu0="$(cpu_of "$pid")"
ch0="$(cpu_of "$ch_pid")"
messages=0
seed=1
while :; do
    # Not 2026: its events after tomorrow are rightly dead-lettered as lying in the future.
    for year in 2023 2024 2025; do
        # Start another year only if at least half of it fits before DURATION.
        fits=$(python3 -c "print(int($(date +%s.%N) - $start + $per_run / 2 < $duration))")
        [ "$fits" -eq 1 ] || [ "$messages" -eq 0 ] || break 2
        out="$("$bin" generate national --year "$year" --scale "$scale" --seed "$seed" --rate "$rate" 2>/dev/null)"
        n="$(echo "$out" | awk '/^produced/ {print $2}')"
        messages=$((messages + n))
    done
    seed=$((seed + 1))
done
produced_end=$(date +%s.%N)
deadline=$(($(date +%s) + 600))
until [ "$(q "SELECT count() FROM $run.ingest_offsets")" -ge "$messages" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "not every message landed within 10 minutes" >&2; exit 1; }
    sleep 0.5
done
done_at=$(date +%s.%N)
cpu1="$(cpu_of "$pid")"
ch1="$(cpu_of "$ch_pid")"
hist="$(metrics | grep '^dispatch_ingest_kafka_latency_seconds')"
sleep 11 # one more RSS sample after the drain
python3 - "$messages" "$start" "$produced_end" "$done_at" "$cpu0" "$cpu1" "$ch0" "$ch1" "$rate" "$rss_file" "$hist" <<'PY'
import sys, re
n = int(sys.argv[1])
start, produced, done = map(float, sys.argv[2:5])
cpu0, cpu1, ch0, ch1 = map(float, sys.argv[5:9])
rate = int(sys.argv[9])
rss = [l.split("\t") for l in open(sys.argv[10]).read().splitlines()[1:] if l.strip()]
buckets, count = [], 0
for line in sys.argv[11].splitlines():
    m = re.match(r'dispatch_ingest_kafka_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m:
        buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    m = re.match(r"dispatch_ingest_kafka_latency_seconds_count (\S+)", line)
    if m:
        count = float(m.group(1))
buckets.sort()
def quantile(q):
    rank, lo, below = q * count, 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * (rank - below) / max(c - below, 1)
        lo, below = le, c
    return lo
def within(s):
    return next((c for le, c in buckets if le == s), float("nan")) / count * 100 if count else float("nan")
print(f"steady input at {rate:,} msg/s for {produced - start:.0f} s: {n:,} messages, "
      f"achieved {n / (produced - start):,.0f} msg/s; drained {done - produced:.1f} s after the last send")
print(f"latency (record timestamp -> insert acknowledged), {count:,.0f} events: "
      f"p50 {quantile(0.5):.3f} s, p99 {quantile(0.99):.3f} s (interpolated within buckets); "
      f"within 0.5 s {within(0.5):.2f}%, within 1 s {within(1.0):.2f}%, within 2.5 s {within(2.5):.2f}%")
print(f"CPU per million events: {(cpu1 - cpu0) / n * 1e6:.2f} s pipeline + {(ch1 - ch0) / n * 1e6:.2f} s ClickHouse; "
      f"pipeline {((cpu1 - cpu0) / (done - start)) * 100:.0f}% of a core on average")
if rss:
    kb = [int(r[1]) for r in rss if r[1]]
    secs = [int(r[0]) for r in rss]
    warm = [k for s, k in zip(secs, kb) if s >= 60] or kb
    print(f"RSS over {secs[-1]} s ({len(kb)} samples every 10 s): first {kb[0] / 1024:.0f} MB, "
          f"after the first minute min {min(warm) / 1024:.0f} / max {max(warm) / 1024:.0f} MB, "
          f"last {kb[-1] / 1024:.0f} MB")
    if len(warm) >= 4:
        q = len(warm) // 4
        first, last = sum(warm[:q]) / q, sum(warm[-q:]) / q
        print(f"RSS first quarter mean {first / 1024:.0f} MB, last quarter mean {last / 1024:.0f} MB "
              f"({(last - first) / first * 100:+.1f}%)")
PY
echo "RSS series: $rss_file"
