#!/usr/bin/env bash
# Issue #19 target 5: how long a job takes after a commit that changes nothing (no-op) and
# after one that adds one file, on a repo of N one-file datums (`/*`, null executor), for
# each N given (default 10000 100000 1000000). The baseline is measured in the same run:
# the same engine with the O(change) route for unchanged inputs turned off
# (`EngineBuilder::skip_unchanged_jobs(false)`, every job walks its datums), interleaved
# round by round with the route on. Prints every time and a RESULT line per scenario with
# the medians and the ratio (skip / walk).
#
# Usage: benches/scripts/incremental.sh [N...]   (ROUNDS=3 by default; MORE=N more rounds of
# the O(change) engine alone, one after another, to pass the store's compactions: 0 by default;
# INPUT=union: a union of two `/*` inputs over the repo, two datums per file; INPUT=cross: the
# repo's `/*` crossed with a one-file repo `model`)
# On PostgreSQL (#16's "no-op re-run of a 100,000-datum job"): BENCH_STORE=postgres://... with
# a fresh `?schema=NAME` per N, e.g. `eval "$(bash .ci/postgres)"` then
# BENCH_STORE="$PIPELINE_TEST_POSTGRES?schema=inc_$RANDOM" benches/scripts/incremental.sh 100000
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/target/release/incremental-jobs}
(cd "$ROOT" && cargo build --release -q -p benches --bin incremental-jobs)
ROUNDS=${ROUNDS:-3}
MORE=${MORE:-0}
[ $# -gt 0 ] || set -- 10000 100000 1000000
for n in "$@"; do
  W=$(mktemp -d "${TMPDIR:-/tmp}/incremental.XXXXXX")
  "$BIN" "$W/store" "$n" "$ROUNDS" "$MORE"
  rm -rf "$W"
done
