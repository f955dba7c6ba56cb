#!/usr/bin/env bash
# Python virtualenv for the SQL check (chdb-core = ClickHouse 26.x in-process) and the 26.9 HTTP
# fixture, in $CACHE_DIR/venv: tests/sql/requirements.txt, installed again when it changed.
# Prints the venv's python on stdout.
set -euo pipefail
source "$(dirname "$0")/env.sh"
ensure_venv "$CACHE_DIR/venv" "$REPO_ROOT/tests/sql/requirements.txt"
echo "$CACHE_DIR/venv/bin/python"
