# Shared settings for the local stack scripts. Source it; every value can be overridden from the
# environment before calling any deploy/local script.
# shellcheck shell=bash
DEPLOY_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_LOCAL_DIR/../.." && pwd)"
export REPO_ROOT

# Downloads (jars, venv): safe to delete, re-fetched on demand.
export CACHE_DIR="${CACHE_DIR:-$REPO_ROOT/.cache}"
# Server state (data, logs, pid files): deleted by `down.sh --purge`.
export STATE_DIR="${STATE_DIR:-$REPO_ROOT/.local}"

export KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
export KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-3}"
export KAFKA_BOOTSTRAP="${KAFKA_HOST}:${KAFKA_PORT}"
# Topics created by `up.sh` (space separated).
export KAFKA_TOPICS="${KAFKA_TOPICS:-dispatch.calls dispatch.alerts dispatch.cancels dispatch.on-scene dispatch.transports dispatch.dlq}"

export CLICKHOUSE_HOST="${CLICKHOUSE_HOST:-127.0.0.1}"
export CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
export CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
export CLICKHOUSE_URL="http://${CLICKHOUSE_HOST}:${CLICKHOUSE_HTTP_PORT}"

log() { printf '[deploy/local] %s\n' "$*" >&2; }

# pid_is_ours PIDFILE MARKER: the pid file names a live process whose command line contains
# MARKER (our config path), so we never signal a process that merely reused the pid.
pid_is_ours() {
    local pidfile="$1" marker="$2" pid
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$marker"
}

# stop_ours NAME PIDFILE MARKER STATE_SUBDIR [--purge]: SIGTERM the process from the pid file
# (never by name), SIGKILL after 30 s, remove the pid file; --purge also deletes STATE_SUBDIR.
stop_ours() {
    local name="$1" pidfile="$2" marker="$3" dir="$4" purge="${5:-}" pid
    if pid_is_ours "$pidfile" "$marker"; then
        pid="$(cat "$pidfile")"
        log "stopping $name (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 60); do
            pid_is_ours "$pidfile" "$marker" || break
            sleep 0.5
        done
        if pid_is_ours "$pidfile" "$marker"; then
            log "$name did not stop within 30 s; sending SIGKILL"
            kill -KILL "$pid" || true
        fi
    else
        log "$name is not running (no live process from our pid file)"
    fi
    rm -f "$pidfile"
    if [ "$purge" = "--purge" ]; then
        log "deleting $dir"
        rm -rf "$dir"
    fi
}

# ensure_venv DIR REQUIREMENTS [NODEPS_PACKAGE]: a Python virtualenv at DIR (rebuilt when its
# interpreter no longer runs) with REQUIREMENTS installed, and NODEPS_PACKAGE (if given) installed
# with --no-deps; pip runs again only when the requirements changed (sha256 stamp in DIR).
ensure_venv() {
    local venv="$1" req="$2" nodeps="${3:-}" stamp want
    stamp="$venv/.requirements.sha256"
    [ -f "$req" ] || { log "missing $req"; return 1; }
    want="$( (cat "$req"; echo "$nodeps") | sha256sum | cut -d' ' -f1)"
    if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        log "creating $venv with $(python3 --version 2>&1)"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv --clear "$venv" >&2
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing $(grep -v '^\s*#' "$req" | tr '\n' ' ')${nodeps:+$nodeps (--no-deps) }into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
        if [ -n "$nodeps" ]; then
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$nodeps" >&2
        fi
        echo "$want" >"$stamp"
    fi
}
