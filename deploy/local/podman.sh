#!/usr/bin/env bash
# Podman for the container test, without a Docker engine or a registry (see docs/deploy.md):
#   podman.sh install   install podman and mmdebstrap from Debian if missing (idempotent)
#   podman.sh env       print `export CONTAINERS_CONF=...` for this machine (runc, cgroupfs, file events)
#   podman.sh base      make docker.io/library/debian:bookworm-slim locally with mmdebstrap from the
#                       Debian mirror apt uses; the rootfs tarball is cached under $CACHE_DIR/podman
# Exits 3 (and says why) when podman cannot run here, so the caller can skip loudly.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"

pdir="$CACHE_DIR/podman"
mkdir -p "$pdir"
conf="$pdir/containers.conf"
base_tag="docker.io/library/debian:bookworm-slim"

write_conf() {
    cat >"$conf.tmp" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
CONF
    mv "$conf.tmp" "$conf"
}

cmd_install() {
    local need=()
    for p in podman buildah runc netavark aardvark-dns slirp4netns passt fuse-overlayfs uidmap catatonit mmdebstrap iptables; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        log "installing Debian packages: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
            apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        }
    fi
    write_conf
}

cmd_env() {
    [ -f "$conf" ] || write_conf
    echo "export CONTAINERS_CONF=$conf"
}

# The mirror apt already uses (deb822 sources or sources.list).
mirror() {
    local m
    m="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)"
    [ -n "$m" ] || m="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -n1)"
    echo "${m:-http://deb.debian.org/debian}"
}

cmd_base() {
    export CONTAINERS_CONF="$conf"
    [ -f "$conf" ] || write_conf
    if podman image exists "$base_tag"; then
        return 0
    fi
    local tar="$pdir/debian-bookworm-minbase.tar"
    if [ ! -s "$tar" ]; then
        log "making a Debian bookworm base with mmdebstrap from $(mirror) (about a minute)"
        # The output format follows the file name: it must end in .tar.
        mmdebstrap --quiet --variant=minbase bookworm "$pdir/partial.tar" "deb $(mirror) bookworm main" >&2
        mv "$pdir/partial.tar" "$tar"
    fi
    podman import --quiet "$tar" "$base_tag" >/dev/null
    log "imported $tar as $base_tag"
}

cmd_check() {
    export CONTAINERS_CONF="$conf"
    [ -f "$conf" ] || write_conf
    if ! command -v podman >/dev/null 2>&1; then
        echo "podman is not installed" >&2
        return 3
    fi
    local out
    if ! out="$(podman info 2>&1)"; then
        echo "podman cannot run on this machine: $(echo "$out" | tail -n 3)" >&2
        return 3
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    env) cmd_env ;;
    base) cmd_base ;;
    check) cmd_check ;;
    *) echo "usage: $0 install|env|base|check" >&2; exit 2 ;;
esac
