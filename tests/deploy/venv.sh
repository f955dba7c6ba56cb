#!/usr/bin/env bash
# Python virtualenv for the deployment checks in $CACHE_DIR/deploy-venv: tests/deploy/requirements.txt
# plus docker-compose 1.29.2 without its dependencies, only for the Compose specification schema it
# ships (compose/config/compose_spec.json). Reinstalls when the requirements change. Prints the
# venv's python on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../deploy/local/env.sh"
venv="$CACHE_DIR/deploy-venv"
ensure_venv "$venv" "$here/requirements.txt" docker-compose==1.29.2
echo "$venv/bin/python"
