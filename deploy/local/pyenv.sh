#!/usr/bin/env bash
# Python virtualenv for the SQL check (chdb = ClickHouse 26.x in-process), in $CACHE_DIR/venv.
# Installs tests/sql/requirements.txt when it changed. Prints the venv's python on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
venv="$CACHE_DIR/venv"
req="$REPO_ROOT/tests/sql/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing $(tr '\n' ' ' <"$req")into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
