#!/usr/bin/env bash
# Offline checks of the deployment files, no engine or cluster needed (under a minute warm):
# promtool check config/rules and the alert unit tests, kubernetes-validate --strict on the
# manifests, and tests/deploy/check_deploy.py (Compose schema, files, config keys, ports, metric
# names in dashboards and alerts).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
source "$repo/deploy/local/env.sh"
cd "$repo"
say() { printf '[deploy checks] %s\n' "$*" >&2; }

# promtool from Debian's prometheus package, extracted (no server installed or started).
promtool="$(command -v promtool || true)"
if [ -z "$promtool" ]; then
    promtool="$CACHE_DIR/bin/promtool"
    if [ ! -x "$promtool" ]; then
        say "fetching promtool from Debian's prometheus package"
        tmp="$(mktemp -d)"
        (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq prometheus; })
        dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
        mkdir -p "$CACHE_DIR/bin"
        cp "$tmp/x/usr/bin/promtool" "$promtool"
        rm -rf "$tmp"
    fi
fi
python="$(bash tests/deploy/venv.sh)"

say "promtool check config / check rules / test rules"
"$promtool" check config deploy/prometheus/prometheus.yml >/dev/null
"$promtool" check rules deploy/prometheus/alerts.yml >/dev/null
"$promtool" test rules deploy/prometheus/alerts_test.yml

say "kubernetes-validate --strict deploy/k8s/*.yaml"
"$(dirname "$python")/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml

say "compose, manifests, dashboards, alerts (tests/deploy/check_deploy.py)"
cargo build --quiet --bin dispatch-ingest
"$python" tests/deploy/check_deploy.py target/debug/dispatch-ingest
