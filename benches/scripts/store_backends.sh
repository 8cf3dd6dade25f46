#!/usr/bin/env bash
# Per-datum cost of the same job on the embedded store (redb + objects directory), on
# PostgreSQL 15 with an objects directory, and on PostgreSQL + s3s-fs on loopback, one
# `pipectl serve` each, same run,
# alternating rounds (issue #16 "per-datum overhead on PostgreSQL + local S3 vs embedded").
# The job: N one-file datums through `tr a-z A-Z`, parallelism 2; timed from `put file -r`
# to the job's end (put waits for the jobs it starts), then a no-op re-put of the same files.
#
#   bash benches/scripts/store_backends.sh [N_FILES] [ROUNDS]
#   PIPECTL=path/to/pipectl (default target/release/pipectl, built if missing)
set -euo pipefail
N=${1:-2000}
ROUNDS=${2:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PIPECTL=${PIPECTL:-$ROOT/target/release/pipectl}
[ -x "$PIPECTL" ] || (cd "$ROOT" && cargo build --release -p pipectl)
cd "$ROOT"
eval "$(bash .ci/postgres)"
source .ci/s3
W=$(mktemp -d "${TMPDIR:-/tmp}/store-backends.XXXXXX")
trap 'pkill -f "$W/" 2>/dev/null; rm -rf "$W"' EXIT
mkdir -p "$W/in"
for i in $(seq 1 "$N"); do echo "hello world number $i" > "$W/in/f$i"; done
cat > "$W/p.yaml" <<'Y'
pipeline: {name: up}
parallelism_spec: {constant: 2}
transform: {cmd: [sh, -c, 'for f in /pfs/data/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done']}
input: {pfs: {repo: data, glob: /*}}
Y
now() { date +%s.%N; }

# One round on a backend: fresh store, serve, repo + pipeline, timed put (full run), timed
# re-put (no-op). Prints "full noop" seconds.
round() {
  local kind=$1 r=$2 root="$W/$1-$2" s e full noop
  local -a env=(PIPECTL_ROOT="$root")
  if [ "$kind" = pg-dir ]; then
    env+=(PIPECTL_STORE="$PIPELINE_TEST_POSTGRES?schema=sbd_$$_$r" PIPECTL_OBJECTS="$root-objects")
    env "${env[@]}" "$PIPECTL" init >/dev/null
  fi
  if [ "$kind" = server ]; then
    env+=(PIPECTL_STORE="$PIPELINE_TEST_POSTGRES?schema=sb_$$_$r"
          PIPECTL_OBJECTS="s3://pipeline-test/sb-$$-$r"
          AWS_ENDPOINT_URL="$PIPELINE_TEST_S3" AWS_ALLOW_HTTP=true)
    env "${env[@]}" "$PIPECTL" init >/dev/null
  fi
  env "${env[@]}" "$PIPECTL" serve >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do [ -S "$root/api.sock" ] && break; sleep 0.1; done
  env "${env[@]}" "$PIPECTL" create repo data >/dev/null 2>&1
  env "${env[@]}" "$PIPECTL" create pipeline -f "$W/p.yaml" >/dev/null 2>&1
  s=$(now); env "${env[@]}" "$PIPECTL" put file -r data@master:/ -f "$W/in" >/dev/null 2>&1; e=$(now)
  full=$(echo "$e - $s" | bc)
  s=$(now); env "${env[@]}" "$PIPECTL" put file -r data@master:/ -f "$W/in" >/dev/null 2>&1; e=$(now)
  noop=$(echo "$e - $s" | bc)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$full $noop"
}

echo "N=$N files, $ROUNDS alternating rounds"
echo "round | embedded full | PG + dir full (ratio) | PG + S3 full (ratio) | no-op: embedded / PG + dir / PG + S3"
for r in $(seq 1 "$ROUNDS"); do
  read -r ef en < <(round embedded "$r")
  read -r df dn < <(round pg-dir "$r")
  read -r sf sn < <(round server "$r")
  printf '%s | %.2f s | %.2f s (%.2fx) | %.2f s (%.2fx) | %.2f / %.2f / %.2f s\n' "$r" "$ef" \
    "$df" "$(echo "$df / $ef" | bc -l)" "$sf" "$(echo "$sf / $ef" | bc -l)" "$en" "$dn" "$sn"
done
