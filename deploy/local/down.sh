#!/usr/bin/env bash
# Stop what up.sh started (by pid file, never by name). `--purge` also deletes the servers' data.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/kafka.sh" down "$@"
bash "$here/clickhouse.sh" down "$@"
