# Shared by the bench scripts (source it): the local stack's settings (deploy/local/env.sh), the
# stack started, the binary under test in $bin (BIN, default a fresh release build), the stream
# names and their topic suffixes, and the CPU seconds of a process.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/env.sh"
cd "$REPO_ROOT"

streams=(call alert cancel on_scene transport)
declare -A topic_suffix=([call]=calls [alert]=alerts [cancel]=cancels [on_scene]=on-scene [transport]=transports)

bin="${BIN:-target/release/dispatch-ingest}"
bash deploy/local/up.sh >/dev/null
if [ "$bin" = target/release/dispatch-ingest ]; then
    cargo build --release --quiet --bin dispatch-ingest
fi
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }

q() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
ticks="$(getconf CLK_TCK)"
# CPU seconds (user + system) of a live process.
cpu_of() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }

# A run of its own, named $run: its database, consumer group, dead-letter topic and five stream
# topics (created, three partitions each), metrics on 127.0.0.1:$metrics_port, RUST_LOG=warn,
# all exported for the pipeline.
own_topics() {
    export RUST_LOG=warn
    export DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP"
    export DISPATCH_INGEST__CLICKHOUSE__URL="$CLICKHOUSE_URL"
    export DISPATCH_INGEST__CLICKHOUSE__DATABASE="$run"
    export DISPATCH_INGEST__KAFKA__GROUP_ID="$run"
    export DISPATCH_INGEST__KAFKA__DLQ_TOPIC="$run.dlq"
    export DISPATCH_INGEST__TELEMETRY__LISTEN="127.0.0.1:$metrics_port"
    local topics=("$run.dlq") s t
    for s in "${streams[@]}"; do
        t="$run.${topic_suffix[$s]}"
        topics+=("$t")
        export "DISPATCH_INGEST__TOPICS__${s^^}__NAME=$t"
    done
    KAFKA_TOPICS="${topics[*]}" bash deploy/local/kafka.sh topics >/dev/null
}
