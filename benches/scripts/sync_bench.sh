#!/usr/bin/env bash
# Directory sync, ingest and export through pipectl (#19 targets 1-3), each against
# baselines measured in the same run; prints seconds and ratios.
#
#   sync:   re-sync of an unchanged N-file directory (`put file -r data@master:/ -f in`),
#           and after adding one file, without and with a pipeline (`tr a-z A-Z` per file,
#           2 workers) on the repo; baselines: `make -j2` no-op and one-new-file run over the
#           same files (a pattern rule per file), and `find` listing the directory.
#   ingest: `put file -r` of M small files (0.5-4 KiB in 100 directories) against `cp -r`
#           and `cp -r` + `sync`; `put file` of one big file against `cp` and `cp` + `sync`.
#   export: `get file -r` of N files (in-process: one export request, the store writes the
#           files) against `cp -r` of the same local files.
#
# Usage: benches/scripts/sync_bench.sh [sync|ingest|export|all]
#   SYNC_N (10000), INGEST_N (100000), BIG_MIB (1024), EXPORT_N (10000), ROUNDS (3)
#   PIPECTL=path/to/pipectl (default target/release/pipectl, built if missing)
#   BENCH_DIR: scratch directory (default under $TMPDIR); needs ~3x the data sizes.
set -euo pipefail
WHAT=${1:-all}
SYNC_N=${SYNC_N:-10000}
INGEST_N=${INGEST_N:-100000}
BIG_MIB=${BIG_MIB:-1024}
EXPORT_N=${EXPORT_N:-10000}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PIPECTL=${PIPECTL:-$ROOT/target/release/pipectl}
[ -x "$PIPECTL" ] || (cd "$ROOT" && cargo build --release -p pipectl)
W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/sync-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

now() { date +%s.%N; }
# Seconds one command takes (its output discarded; a failure stops the script).
t() {
  local s e
  s=$(now)
  "$@" >/dev/null 2>"$W/last.err" || { cat "$W/last.err" >&2; exit 1; }
  e=$(now)
  echo "$e - $s" | bc
}
ratio() { echo "scale=3; $1 / $2" | bc; }
row() { printf "%-34s %10.3f s %10s\n" "$1" "$2" "${3:+x $3}"; }
# Writes N files of "hello world number I" into DIR (flat).
small_files() {
  python3 - "$1" "$2" <<'PY'
import sys, os
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(f"hello world number {i}\n")
PY
}

bench_sync() {
  local n=$SYNC_N
  echo "== sync: $n files, $ROUNDS rounds (pipectl: $PIPECTL)"
  small_files "$W/sync/in" "$n"
  mkdir -p "$W/sync/mk/out"
  cp -r "$W/sync/in" "$W/sync/mk/in"
  cat > "$W/sync/mk/Makefile" <<'MK'
IN := $(wildcard in/*.txt)
OUT := $(patsubst in/%,out/%,$(IN))
all: $(OUT)
out/%.txt: in/%.txt
	sh -c 'tr a-z A-Z < $< > $@'
MK
  make -C "$W/sync/mk" -j2 >/dev/null
  local P="$PIPECTL --root $W/sync/store"
  $P create repo data >/dev/null
  echo "first put -r (not a baseline): $(t $P put file -r data@master:/ -f "$W/sync/in") s"
  sleep 0.05 # past the clock tick of the last file written (racily clean rule)
  for r in $(seq 1 "$ROUNDS"); do
    local find_s make_s put_s
    find_s=$(t find "$W/sync/in" -type f)
    make_s=$(t make -C "$W/sync/mk" -j2)
    put_s=$(t $P put file -r data@master:/ -f "$W/sync/in")
    echo "round $r, no-op re-sync:"
    row "  find (list + stat walk floor)" "$find_s"
    row "  make -j2 no-op (baseline)" "$make_s" 1.000
    row "  pipectl put -r, no pipeline" "$put_s" "$(ratio "$put_s" "$make_s")"
  done
  echo "new $r" > "$W/sync/mk/in/zz-new$r.txt"
  local make_one put_one
  make_one=$(t make -C "$W/sync/mk" -j2)
  echo "new $r" > "$W/sync/in/zz-new$r.txt"
  put_one=$(t $P put file -r data@master:/ -f "$W/sync/in")
  echo "one new file:"
  row "  make -j2 (baseline)" "$make_one" 1.000
  row "  pipectl put -r, no pipeline" "$put_one" "$(ratio "$put_one" "$make_one")"
  cat > "$W/sync/upper.yaml" <<'YAML'
pipeline: {name: upper}
transform:
  cmd: [sh, -c, 'tr a-z A-Z < "$data" > "/pfs/out/${data##*/}"']
parallelism_spec: {constant: 2}
input: {pfs: {repo: data, glob: "/*"}}
YAML
  echo "with pipeline 'upper' ($n datums; its full run: $(t $P create pipeline -f "$W/sync/upper.yaml") s):"
  sleep 0.05
  for r in $(seq 1 "$ROUNDS"); do
    local make_s put_s
    make_s=$(t make -C "$W/sync/mk" -j2)
    put_s=$(t $P put file -r data@master:/ -f "$W/sync/in")
    row "  round $r: make -j2 no-op" "$make_s" 1.000
    row "  round $r: pipectl put -r + job" "$put_s" "$(ratio "$put_s" "$make_s")"
  done
  echo "new2" > "$W/sync/mk/in/zz-newer.txt"
  make_one=$(t make -C "$W/sync/mk" -j2)
  echo "new2" > "$W/sync/in/zz-newer.txt"
  put_one=$(t $P put file -r data@master:/ -f "$W/sync/in")
  row "  one new file: make -j2" "$make_one" 1.000
  row "  one new file: pipectl put -r + job" "$put_one" "$(ratio "$put_one" "$make_one")"
  $P list job -o json | head -1 | cut -c1-200 >&2
  rm -rf "$W/sync"
}

bench_ingest() {
  local m=$INGEST_N
  echo "== ingest: $m small files in 100 directories; one file of $BIG_MIB MiB"
  python3 - "$W/ing/in" "$m" <<'PY'
import sys, os, random
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(19)
for i in range(n):
    sub = os.path.join(d, f"d{i % 100:03d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:06d}.bin"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(512, 4096)))
PY
  sync
  local P="$PIPECTL --root $W/ing/store"
  $P create repo data >/dev/null
  local cp_s cps_s put_s
  cp_s=$(t cp -r "$W/ing/in" "$W/ing/cp1")
  cps_s=$(t sh -c "cp -r '$W/ing/in' '$W/ing/cp2' && sync")
  sync
  put_s=$(t $P put file -r data@master:/ -f "$W/ing/in")
  row "cp -r (baseline)" "$cp_s" 1.000
  row "cp -r + sync" "$cps_s" "$(ratio "$cps_s" "$cp_s")"
  row "pipectl put -r" "$put_s" "$(ratio "$put_s" "$cp_s")"
  echo "  put -r / (cp -r + sync): $(ratio "$put_s" "$cps_s")"
  rm -rf "$W/ing"
  mkdir -p "$W/big"
  head -c "$((BIG_MIB << 20))" /dev/urandom > "$W/big/file"
  sync
  P="$PIPECTL --root $W/big/store"
  $P create repo data >/dev/null
  cp_s=$(t cp "$W/big/file" "$W/big/copy1")
  cps_s=$(t sh -c "cp '$W/big/file' '$W/big/copy2' && sync")
  rm -f "$W/big/copy1" "$W/big/copy2"
  sync
  put_s=$(t $P put file data@master:/big -f "$W/big/file")
  row "cp $BIG_MIB MiB (baseline)" "$cp_s" 1.000
  row "cp + sync" "$cps_s" "$(ratio "$cps_s" "$cp_s")"
  row "pipectl put file" "$put_s" "$(ratio "$put_s" "$cp_s")"
  echo "  put / (cp + sync): $(ratio "$put_s" "$cps_s")"
  rm -rf "$W/big"
}

bench_export() {
  local n=$EXPORT_N
  echo "== export: $n files"
  small_files "$W/exp/in" "$n"
  local P="$PIPECTL --root $W/exp/store"
  $P create repo data >/dev/null
  $P put file -r data@master:/ -f "$W/exp/in" >/dev/null
  sync
  # Nothing is deleted between rounds (freed inodes slow the next creations on ext4), and
  # the order alternates so both sides see the same conditions.
  for r in $(seq 1 "$ROUNDS"); do
    local cp_s get_s
    if [ $((r % 2)) -eq 1 ]; then
      cp_s=$(t cp -r "$W/exp/in" "$W/exp/cp$r")
      get_s=$(t $P get file -r data@master:/ -o "$W/exp/get$r")
    else
      get_s=$(t $P get file -r data@master:/ -o "$W/exp/get$r")
      cp_s=$(t cp -r "$W/exp/in" "$W/exp/cp$r")
    fi
    row "round $r: cp -r (baseline)" "$cp_s" 1.000
    row "round $r: pipectl get -r" "$get_s" "$(ratio "$get_s" "$cp_s")"
    diff -r "$W/exp/in" "$W/exp/get$r" >/dev/null || { echo "export differs" >&2; exit 1; }
  done
  rm -rf "$W/exp"
}

case $WHAT in
  sync) bench_sync ;;
  ingest) bench_ingest ;;
  export) bench_export ;;
  all) bench_sync; bench_ingest; bench_export ;;
  *) echo "usage: $0 [sync|ingest|export|all]" >&2; exit 2 ;;
esac
