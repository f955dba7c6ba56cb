#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts the local Kafka + ClickHouse if they are
# not running (and stops what it started at the end), then runs formatting and lint checks, the
# unit and integration tests (against the real servers), and the SQL check of every file under
# schemas/clickhouse on ClickHouse 26.x (chdb) and on the local server.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
cd "$REPO_ROOT"
started=()
cleanup() {
    for s in "${started[@]}"; do bash "$here/$s.sh" down || true; done
}
trap cleanup EXIT

step() { printf '\n==== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "install"
bash "$here/install.sh"
python="$(bash "$here/pyenv.sh")"

step "local stack"
for s in clickhouse kafka; do
    if ! bash "$here/$s.sh" status >/dev/null 2>&1; then
        started+=("$s")
    fi
    bash "$here/$s.sh" up
done
export KAFKA_BOOTSTRAP CLICKHOUSE_URL

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings

step "cargo test (unit + integration against the local servers)"
cargo test --lib --bins --tests -- --skip fault_

step "delivery fault-injection suite (tests/delivery_faults.rs), ${FAULT_RUNS:=3} runs in a row"
for run in $(seq 1 "$FAULT_RUNS"); do
    echo "-- fault suite run $run of $FAULT_RUNS"
    cargo test --test delivery_faults -- --nocapture fault_ 2>&1 | grep -v '^\[deploy/local\]'
done

step "dispatch-ingest reference check (config/reference)"
target/debug/dispatch-ingest reference check

step "fuzz the decoder for ${FUZZ_SECONDS:=45} s (cargo +nightly fuzz; seeds in fuzz/seeds/decode)"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is needed for cargo fuzz (rustup toolchain install nightly)" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked --quiet cargo-fuzz@0.13.2
corpus="$STATE_DIR/fuzz-corpus/decode"
mkdir -p "$corpus"
cp fuzz/seeds/decode/* "$corpus/"
fuzz_log="$STATE_DIR/fuzz-decode.log"
if cargo +nightly fuzz run decode "$corpus" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -malloc_limit_mb=64 >"$fuzz_log" 2>&1; then
    grep -E "^Done [0-9]+ runs" "$fuzz_log" | sed 's/^/fuzz decode: /'
else
    tail -n 60 "$fuzz_log"
    echo "fuzz decode: FAILED (crash input under fuzz/artifacts/decode/, log $fuzz_log)" >&2
    exit 1
fi

step "SQL check on ClickHouse 26.x (chdb)"
"$python" tests/sql/check_sql.py --engine chdb

step "SQL check on the local server ($CLICKHOUSE_URL)"
"$python" tests/sql/check_sql.py --engine http --url "$CLICKHOUSE_URL"

step "local stack scripts (own ports and state directory)"
bash tests/scripts/local_stack_test.sh

step "integration tests again on ClickHouse 26.9 (chdb behind tests/chdb_http), grants check"
bash tests/chdb_http/run_tests.sh

step "replicated ClickHouse: replica kill -9, failover, catch-up (tests/cluster_failover.rs)"
cargo test --test cluster_failover -- --nocapture fault_ 2>&1 | grep -v '^\[deploy/local\]'

step "deploy: compose/k8s/Prometheus/Grafana checks and the container test (tests/deploy/run.sh)"
bash tests/deploy/run.sh

step "done"
