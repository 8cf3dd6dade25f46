#!/usr/bin/env bash
# Server time of the web console's pages on a store holding one N-datum job (default
# 1,000,000): builds the store once (two commits, two jobs of an in-process executor that does
# almost nothing; 1 % of the second job's datums fail, a tenth are skipped), then 200 GETs of
# each page through the router in process, p50/p95/max and p50 as a ratio to a baseline
# (GET /api/v1/repos/raw) measured in the same run. The store is kept for later runs.
#
# Usage: benches/scripts/console_pages.sh [N] [STORE_DIR] [REQUESTS]
set -euo pipefail
N=${1:-1000000}
DIR=${2:-${TMPDIR:-/tmp}/console-pages-$N}
REQUESTS=${3:-200}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
(cd "$ROOT" && cargo build --release -q -p benches --bin console-pages)
mkdir -p "$DIR"
exec "$ROOT/target/release/console-pages" "$DIR" "$N" "$REQUESTS"
