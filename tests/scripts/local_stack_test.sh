#!/usr/bin/env bash
# Tests of deploy/local/{clickhouse,kafka}.sh on their own ports and state directory (so the
# suite's servers are not touched): up is idempotent, status tells running from stopped, data
# survives a restart, down stops only the process from our pid file (never by name), and
# --purge deletes the state.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="$(mktemp -d)"
export STATE_DIR="$scratch/state"
export CLICKHOUSE_HTTP_PORT="${TEST_CLICKHOUSE_HTTP_PORT:-18123}"
export CLICKHOUSE_TCP_PORT="${TEST_CLICKHOUSE_TCP_PORT:-19000}"
export KAFKA_PORT="${TEST_KAFKA_PORT:-19092}"
export KAFKA_CONTROLLER_PORT="${TEST_KAFKA_CONTROLLER_PORT:-19093}"
export KAFKA_TOPICS="stack.test"
unset CLICKHOUSE_URL KAFKA_BOOTSTRAP
ch="$repo/deploy/local/clickhouse.sh"
kafka="$repo/deploy/local/kafka.sh"
url="http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/"
passed=0
failed=0
check() {
    local name="$1"; shift
    if "$@" >"$scratch/out" 2>&1; then
        echo "ok   $name"; passed=$((passed + 1))
    else
        echo "FAIL $name"; sed 's/^/     /' "$scratch/out" | tail -20; failed=$((failed + 1))
    fi
}
decoy_pid=""
cleanup() {
    bash "$ch" down --purge >/dev/null 2>&1
    bash "$kafka" down --purge >/dev/null 2>&1
    [ -n "$decoy_pid" ] && kill "$decoy_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
status_is() { local want="$1" script="$2"; bash "$script" status; [ $? -eq "$want" ]; }
# A stopped process may linger briefly as a zombie until its (re)parent reaps it.
gone() {
    for _ in $(seq 1 25); do
        kill -0 "$1" 2>/dev/null || return 0
        grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# ClickHouse
check "clickhouse: status says stopped (exit 3) before up" status_is 3 "$ch"
check "clickhouse: up starts the server" bash "$ch" up
check "clickhouse: status says running (exit 0)" status_is 0 "$ch"
check "clickhouse: second up is a no-op" bash -c "bash '$ch' up 2>&1 | grep -q 'already running'"
check "clickhouse: data written" bash -c "curl -fsS '$url' --data-binary 'CREATE TABLE default.keep (x UInt8) ENGINE = MergeTree ORDER BY x' && curl -fsS '$url' --data-binary 'INSERT INTO default.keep VALUES (7)'"
pid_before="$(cat "$STATE_DIR/clickhouse/clickhouse.pid")"
check "clickhouse: down stops it" bash "$ch" down
check "clickhouse: its process is gone" gone "$pid_before"
check "clickhouse: status says stopped after down" status_is 3 "$ch"
check "clickhouse: down again is a no-op" bash "$ch" down
check "clickhouse: up again" bash "$ch" up
check "clickhouse: data survived the restart" bash -c "[ \"\$(curl -fsS '$url' --data-binary 'SELECT sum(x) FROM default.keep')\" = 7 ]"
# A process named like the server but not started by us must survive `down` without a pid file.
bash -c 'exec -a clickhouse-server sleep 300' &
decoy_pid=$!
mv "$STATE_DIR/clickhouse/clickhouse.pid" "$scratch/ch.pid"
check "clickhouse: down without our pid file signals nothing" bash "$ch" down
check "clickhouse: a same-named foreign process survives down" kill -0 "$decoy_pid"
check "clickhouse: our server also still runs (not killed by name)" bash -c "[ \"\$(curl -fsS '${url}ping')\" = Ok. ]"
mv "$scratch/ch.pid" "$STATE_DIR/clickhouse/clickhouse.pid"
check "clickhouse: down --purge deletes the state" bash -c "bash '$ch' down --purge && [ ! -d '$STATE_DIR/clickhouse' ]"

# Kafka
check "kafka: status says stopped (exit 3) before up" status_is 3 "$kafka"
check "kafka: up starts the broker and creates topics" bash "$kafka" up
check "kafka: status says running" status_is 0 "$kafka"
check "kafka: second up is a no-op" bash -c "bash '$kafka' up 2>&1 | grep -q 'already running'"
libs="$repo/.cache/kafka/libs"
check "kafka: topic has the configured partitions" bash -c "java -cp '$libs/*' org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:$KAFKA_PORT --describe --topic stack.test 2>/dev/null | grep -q 'PartitionCount: ${KAFKA_PARTITIONS:-3}'"
kafka_pid="$(cat "$STATE_DIR/kafka/kafka.pid")"
check "kafka: down stops it" bash "$kafka" down
check "kafka: its process is gone" gone "$kafka_pid"
check "kafka: status says stopped after down" status_is 3 "$kafka"
check "kafka: up again keeps the formatted storage and topics" bash -c "bash '$kafka' up 2>&1 | grep -vq formatting && java -cp '$libs/*' org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:$KAFKA_PORT --list 2>/dev/null | grep -qx stack.test"
check "kafka: down --purge deletes the state" bash -c "bash '$kafka' down --purge && [ ! -d '$STATE_DIR/kafka' ]"

echo "local-stack: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
