#!/usr/bin/env bash
# Show whether the local Kafka and ClickHouse run. Exit 0 when both do, 3 otherwise.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rc=0
bash "$here/kafka.sh" status || rc=3
bash "$here/clickhouse.sh" status || rc=3
exit $rc
