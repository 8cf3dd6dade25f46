#!/usr/bin/env bash
# The server under load (#14 item 7): 8 clients doing put file + list file + get file over
# the store's socket for 60 s while `pipectl serve` runs a 10,000-datum job. Prints
# requests/s and p50/p99 latency per operation (server-load), the job's progress during the
# window, and verifies that every successful put is stored exactly once.
#
# Usage: benches/scripts/server_load.sh [CLIENTS] [SECONDS] [DATUMS]
set -euo pipefail
CLIENTS=${1:-8}
SECS=${2:-60}
N=${3:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
(cd "$ROOT" && cargo build --release -q -p pipectl -p benches --bin pipectl --bin server-load)
PIPECTL=$ROOT/target/release/pipectl
LOAD=$ROOT/target/release/server-load
W=$(mktemp -d "${TMPDIR:-/tmp}/server-load.XXXXXX")
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
export PIPECTL_ROOT=$W/store
mkdir -p "$W/in"
python3 - "$W/in" "$N" <<'PY'
import sys, os
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(f"hello world number {i}\n")
PY
"$PIPECTL" create repo data
"$PIPECTL" create repo load
"$PIPECTL" put file -r data@master:/ -f "$W/in" >/dev/null
"$PIPECTL" serve --poll-ms 1000 >"$W/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do [ -S "$PIPECTL_ROOT/api.sock" ] && break; sleep 0.1; done
cat >"$W/upper.yaml" <<'Y'
pipeline: {name: upper}
transform: {cmd: [sh, -c, 'tr a-z A-Z < "$data" > /pfs/out/$(basename "$data")']}
input: {pfs: {repo: data, glob: "/*"}}
parallelism_spec: {constant: 2}
Y
job_secs() {
  "$PIPECTL" list job -p upper -o json | python3 -c "$JOB_SECS_PY"
}
JOB_SECS_PY='
import sys, json
j = json.loads(sys.stdin.readline()); s = j["stats"]
secs = (j["finished_ms"] - j["started_ms"]) / 1000 if j.get("finished_ms") else float("nan")
print(j["state"], s["datums_processed"], "of", s["datums_total"], "datums in %.2f s" % secs)'
echo "== baseline: upper's $N-datum job through the server, no other clients"
"$PIPECTL" create pipeline -f "$W/upper.yaml" 2>/dev/null
job_secs
echo "== $CLIENTS clients for $SECS s while upper reprocesses its $N datums"
"$PIPECTL" --no-wait update pipeline --reprocess -f "$W/upper.yaml"
sleep 0.5
set +e
"$LOAD" "$PIPECTL_ROOT/api.sock" "$CLIENTS" "$SECS"
rc=$?
set -e
echo "== the job under load"
"$PIPECTL" wait job "upper@$("$PIPECTL" list job -p upper -o json | python3 -c 'import sys,json; print(json.loads(sys.stdin.readline())["id"])')" >/dev/null
job_secs
exit $rc
