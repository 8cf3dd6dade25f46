#!/usr/bin/env bash
# Peak memory of the engine on a job of N one-file datums (default 1,000,000), against
# listing the same input commit (`list file -r`, the store alone) in the same run.
#
# The job is not run to its end (N process starts take many minutes): `create pipeline`
# runs for SECONDS (default 60), sampling its RSS every 2 s, and is then killed. A job that
# held its datums in memory grows through planning; a streaming one stays flat.
#
# Usage: benches/scripts/engine_memory.sh [N] [SECONDS]
#   PIPECTL=path/to/pipectl (default target/release/pipectl, built if missing)
set -euo pipefail
N=${1:-1000000}
SECS=${2:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PIPECTL=${PIPECTL:-$ROOT/target/release/pipectl}
[ -x "$PIPECTL" ] || (cd "$ROOT" && cargo build --release -p pipectl)
W=$(mktemp -d "${TMPDIR:-/tmp}/engine-memory.XXXXXX")
cleanup() { pkill -9 -f "$W/store" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
python3 - "$W/in" "$N" <<'PY'
import sys, os
d, n = sys.argv[1], int(sys.argv[2])
per = 10000
for i in range(n):
    sub = os.path.join(d, f"d{i // per:04d}")
    if i % per == 0:
        os.makedirs(sub)
    with open(os.path.join(sub, f"f{i % per:05d}"), "w") as f:
        f.write("x")
PY
P="$PIPECTL --root $W/store"
$P create repo data >/dev/null
$P put file -r data@master:/ -f "$W/in" >/dev/null
rm -rf "$W/in"
list_kb=$( { /usr/bin/time -f "%M" $P list file -r data@master:/ >/dev/null; } 2>&1 | tail -1)
cat > "$W/p.yaml" <<'YAML'
pipeline: {name: mem}
transform:
  cmd: [sh, -c, 'true']
parallelism_spec: {constant: 2}
input: {pfs: {repo: data, glob: "/*/*"}}
YAML
$P create pipeline -f "$W/p.yaml" >/dev/null 2>&1 &
pid=$!
peak=0
samples=""
for _ in $(seq 2 2 "$SECS"); do
  sleep 2
  rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)
  [ -n "$rss" ] || break
  samples="$samples $((rss / 1024))"
  [ "$rss" -gt "$peak" ] && peak=$rss
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
echo "datums: $N, sampled for ${SECS} s"
echo "RSS samples (MiB):$samples"
echo "baseline: list file -r peak RSS: $((list_kb / 1024)) MiB"
echo "engine: create pipeline peak RSS: $((peak / 1024)) MiB (ratio $(echo "scale=2; $peak / $list_kb" | bc))"
