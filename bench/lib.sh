# Shared by the bench scripts (source it): the local stack's settings (deploy/local/env.sh), the
# stack started, the binary under test in $bin (BIN, default a fresh release build), the stream
# names and their topic suffixes, and the CPU seconds of a process.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/env.sh"
cd "$REPO_ROOT"

streams=(call alert cancel on_scene transport)
declare -A topic_suffix=([call]=calls [alert]=alerts [cancel]=cancels [on_scene]=on-scene [transport]=transports)

bin="${BIN:-target/release/dispatch-ingest}"
bash deploy/local/up.sh >/dev/null
if [ "$bin" = target/release/dispatch-ingest ]; then
    cargo build --release --quiet --bin dispatch-ingest
fi
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }

q() { curl -fsS "$CLICKHOUSE_URL/" --data-binary "$1"; }
ticks="$(getconf CLK_TCK)"
# CPU seconds (user + system) of a live process.
cpu_of() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
