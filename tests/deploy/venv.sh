#!/usr/bin/env bash
# Python virtualenv for the deployment checks in $CACHE_DIR/deploy-venv: tests/deploy/requirements.txt
# plus docker-compose 1.29.2 without its dependencies, only for the Compose specification schema it
# ships (compose/config/compose_spec.json). Reinstalls when the requirements change. Prints the
# venv's python on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../deploy/local/env.sh"
venv="$CACHE_DIR/deploy-venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$( (cat "$req"; echo docker-compose==1.29.2) | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing $(grep -v '^#' "$req" | tr '\n' ' ')docker-compose==1.29.2 (--no-deps) into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps docker-compose==1.29.2 >&2
    echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
