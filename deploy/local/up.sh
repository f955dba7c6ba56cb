#!/usr/bin/env bash
# Start the local stack (Kafka 4.x in KRaft mode, ClickHouse) without Docker. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/clickhouse.sh" up
bash "$here/kafka.sh" up
