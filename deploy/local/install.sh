#!/usr/bin/env bash
# Install what the local stack, the demo and the tests need on a Debian machine (run as root):
# Debian packages for ClickHouse, Java 17 and Maven, curl, and a C toolchain for librdkafka
# (with OpenSSL headers: librdkafka is built with TLS; openssl makes the local test certificates).
# Rust (cargo >= 1.89) must already be installed (rustup); Debian's rustc is too old.
# Idempotent: installs only what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

need=()
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server clickhouse-client)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'install ok installed' || need+=(libssl-dev)
dpkg-query -W -f='${Status}' ca-certificates 2>/dev/null | grep -q 'install ok installed' || need+=(ca-certificates)
# Headless browser for the HTML report checks (tests/browser/check_page.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The package must not start its own server: ours runs from deploy/local/clickhouse.sh.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install Rust >= 1.89 with rustup (https://rustup.rs), then re-run"
    exit 1
fi
# The browser check's venv (Playwright from PyPI driving the chromium above; no browser download).
bash "$here/browser-env.sh" >/dev/null
