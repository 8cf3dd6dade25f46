#!/usr/bin/env bash
# Datum planning at 1,000,000 paths under /usr/bin/time -v (wall time and peak memory).
# Each mode runs in a fresh process; "walk" (listing the same synthetic tree) is the baseline.
#
# Then planning from the store: a commit of STORE_N files (1,000 per directory) is built once
# in a scratch store, and each round runs, in fresh processes, `store-walk` (the baseline:
# the store's walk of that commit, every file and directory with its hash), `store-files`
# (glob /*/*, a datum per file) and `store-dirs` (glob /*, a datum per directory); medians
# over the rounds and ratios to the walk's median are printed last.
#
# Usage: benches/scripts/datum_plan.sh [N] [STORE_N] [ROUNDS]
#   (defaults 1000000, 200000, 5; STORE_N=0 skips the store part)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
STORE_N="${2:-200000}"
ROUNDS="${3:-5}"
cargo build --release -q -p benches --bin datum-plan
BIN=target/release/datum-plan
TIME=$(mktemp "${TMPDIR:-/tmp}/datum-plan-time.XXXXXX")
STORE=$(mktemp -d "${TMPDIR:-/tmp}/datum-plan-store.XXXXXX")
trap 'rm -rf "$TIME" "$STORE"' EXIT

# One run of datum-plan under /usr/bin/time: prints its result as a row.
run() {
  local out rss_kb
  out=$(/usr/bin/time -v "$BIN" "$@" 2>"$TIME")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TIME")
  eval "$(echo "$out" | tr ' ' '\n' | grep '=' | sed 's/^/r_/')"
  printf '%-12s %9s %9s %14s %10s %12.1f\n' "$r_mode" "$r_n" "$r_datums" "$r_first_datum_ms" \
    "$r_total_s" "$(echo "$rss_kb / 1024" | bc -l)"
}

printf '%-12s %9s %9s %14s %10s %12s\n' mode n datums first_datum_ms total_s peak_rss_mb
for mode in walk star cross join; do
  run "$mode" "$N"
done
[ "$STORE_N" -gt 0 ] || exit 0

run store-build "$STORE_N" "$STORE"
ROWS=$(for _ in $(seq "$ROUNDS"); do
  for mode in store-walk store-files store-dirs; do
    run "$mode" "$STORE_N" "$STORE"
  done
done | tee /dev/stderr)
echo
echo "$ROWS" | awk '
  { t[$1] = t[$1] " " $5; d[$1] = $3 }
  function median(s,   v, n, i, j, x) {
    n = split(s, v, " ")
    for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
    return v[int((n + 1) / 2)]
  }
  END {
    base = median(t["store-walk"])
    printf "%-12s %9s %10s %8s\n", "mode", "entries", "median_s", "ratio"
    split("store-walk store-files store-dirs", order, " ")
    for (k = 1; k <= 3; k++) {
      m = order[k]; med = median(t[m])
      printf "%-12s %9s %10.3f %7.2fx\n", m, d[m], med, med / base
    }
  }'
