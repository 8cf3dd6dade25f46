#!/usr/bin/env bash
# Datum planning at 1,000,000 paths under /usr/bin/time -v (wall time and peak memory).
# Each mode runs in a fresh process; "walk" (listing the same synthetic tree) is the baseline.
# Usage: benches/scripts/datum_plan.sh [N]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
cargo build --release -q -p benches --bin datum-plan
BIN=target/release/datum-plan
printf '%-6s %9s %9s %14s %10s %12s\n' mode n datums first_datum_ms total_s peak_rss_mb
for mode in walk star cross join; do
  out=$(/usr/bin/time -v "$BIN" "$mode" "$N" 2>/tmp/datum-plan-time.$$)
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' /tmp/datum-plan-time.$$)
  eval "$(echo "$out" | tr ' ' '\n' | grep '=' | sed 's/^/r_/')"
  printf '%-6s %9s %9s %14s %10s %12.1f\n' "$r_mode" "$r_n" "$r_datums" "$r_first_datum_ms" "$r_total_s" "$(echo "$rss_kb / 1024" | bc -l)"
done
rm -f /tmp/datum-plan-time.$$
