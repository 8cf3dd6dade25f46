#!/usr/bin/env bash
# `pipectl list datum -f SPEC --input images=DIR` over a local tree of N files, against
# `find DIR | sort` of the same tree (the floor: a walk printing every path in order), timed
# in the same session, interleaved round by round, median of ROUNDS (caches warm).
#
# The tree: N files of ~100 bytes, 1,000 per directory (/d0000/f0000000.txt ...), so N files
# and N/1000 directories. Two specs: glob /*/* (one datum per file) and /* (one datum per
# directory: the walk is the same, the output 1,000 times smaller). No store: the preview runs
# inside pipectl, as it does for a user without a server.
#
# Usage: benches/scripts/datum_preview.sh [N] [ROUNDS]      (default 200000 files, 5 rounds)
#   PIPECTL=path          pipectl to measure (default target/release/pipectl, built if missing)
#   PIPECTL_BEFORE=path   also measure another pipectl (e.g. built from an older commit); its
#                         output is first checked to be identical
set -euo pipefail
N=${1:-200000}
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PIPECTL=${PIPECTL:-$ROOT/target/release/pipectl}
[ -x "$PIPECTL" ] || (cd "$ROOT" && cargo build --release -q -p pipectl)
W=$(mktemp -d "${TMPDIR:-/tmp}/datum-preview.XXXXXX")
trap 'rm -rf "$W"' EXIT
export PIPECTL_ROOT="$W/no-store"

python3 - "$W/tree" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}.txt"), "w") as f:
        f.write(f"line {i}: " + "x" * 90 + "\n")
PY
spec() {
  printf 'pipeline: {name: preview}\ntransform: {cmd: [sh]}\ninput: {pfs: {repo: images, glob: "%s"}}\n' "$1" > "$W/$2.yaml"
}
spec '/*/*' files
spec '/*' dirs

preview() { "$1" list datum -f "$W/$2.yaml" --input "images=$W/tree"; }
if [ -n "${PIPECTL_BEFORE:-}" ]; then
  for s in files dirs; do
    cmp <(preview "$PIPECTL_BEFORE" $s) <(preview "$PIPECTL" $s) ||
      { echo "datum-preview: $PIPECTL_BEFORE and $PIPECTL disagree on $s" >&2; exit 1; }
  done
fi

now() { date +%s.%N; }
# Prints the wall time of "$@" with its output discarded.
timed() { local s e; s=$(now); "$@" >/dev/null; e=$(now); echo "$e - $s" | bc; }
find_sort() { find "$W/tree" | LC_ALL=C sort; }

declare -A T
modes=(find_sort files dirs)
[ -n "${PIPECTL_BEFORE:-}" ] && modes+=(before_files before_dirs)
find_sort >/dev/null # warm the caches
for _ in $(seq "$ROUNDS"); do
  for m in "${modes[@]}"; do
    case $m in
      find_sort) t=$(timed find_sort) ;;
      files | dirs) t=$(timed preview "$PIPECTL" "$m") ;;
      before_*) t=$(timed preview "$PIPECTL_BEFORE" "${m#before_}") ;;
    esac
    T[$m]="${T[$m]:-} $t"
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
base=$(echo "${T[find_sort]}" | median)
paths=$(find_sort | wc -l)
datums_files=$(($(preview "$PIPECTL" files | wc -l) - 1))
datums_dirs=$(($(preview "$PIPECTL" dirs | wc -l) - 1))
printf '%-34s %9s %10s %8s\n' mode lines median_s ratio
for m in "${modes[@]}"; do
  med=$(echo "${T[$m]}" | median)
  case $m in
    find_sort) label="find | sort (baseline)"; d=$paths ;;
    files) label="list datum /*/*"; d=$datums_files ;;
    dirs) label="list datum /*"; d=$datums_dirs ;;
    before_files) label="list datum /*/* (PIPECTL_BEFORE)"; d=$datums_files ;;
    before_dirs) label="list datum /* (PIPECTL_BEFORE)"; d=$datums_dirs ;;
  esac
  printf '%-34s %9s %10.3f %7.2fx\n' "$label" "$d" "$med" "$(echo "$med / $base" | bc -l)"
done
