#!/usr/bin/env bash
# The browser check's environment: Debian's chromium (installed by install.sh) and a Python
# virtualenv in $CACHE_DIR/venv-browser with the Playwright client from PyPI
# (tests/browser/requirements.txt). Playwright only drives /usr/bin/chromium; no browser is ever
# downloaded (`playwright install` is never run). Installs the requirements when they changed.
# Prints the venv's python on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    log "no chromium at $chromium: run deploy/local/install.sh (Debian package chromium)"
    exit 1
fi
venv="$CACHE_DIR/venv-browser"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ensure_venv "$venv" "$REPO_ROOT/tests/browser/requirements.txt"
echo "$venv/bin/python"
