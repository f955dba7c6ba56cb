# Shared settings for the local stack scripts. Source it; every value can be overridden from the
# environment before calling any deploy/local script.
# shellcheck shell=bash
DEPLOY_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_LOCAL_DIR/../.." && pwd)"
export REPO_ROOT

# Downloads (jars, venv): safe to delete, re-fetched on demand.
export CACHE_DIR="${CACHE_DIR:-$REPO_ROOT/.cache}"
# Server state (data, logs, pid files): deleted by `down.sh --purge`.
export STATE_DIR="${STATE_DIR:-$REPO_ROOT/.local}"

export KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-3}"
export KAFKA_BOOTSTRAP="${KAFKA_HOST}:${KAFKA_PORT}"
# Topics created by `up.sh` (space separated).
export KAFKA_TOPICS="${KAFKA_TOPICS:-dispatch.calls dispatch.alerts dispatch.cancels dispatch.on-scene dispatch.transports dispatch.dlq}"

export CLICKHOUSE_HOST="${CLICKHOUSE_HOST:-127.0.0.1}"
export CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
export CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
export CLICKHOUSE_URL="http://${CLICKHOUSE_HOST}:${CLICKHOUSE_HTTP_PORT}"

log() { printf '[deploy/local] %s\n' "$*" >&2; }
