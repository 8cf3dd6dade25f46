#!/usr/bin/env bash
# Storage benchmarks (not part of `cargo test`): large-scale ratios vs cp / cp -r in the
# same run, then the criterion micro-benchmarks. Results go to stdout; copy the table into
# benches/README.md "## Storage".
#
#   benches/scripts/pfs_bench.sh            # full sizes: 1 GiB, 100,000 files, 1,000,000 entries
#   PFS_BENCH_BIG_MIB=64 PFS_BENCH_SMALL=10000 PFS_BENCH_LIST=100000 benches/scripts/pfs_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench -p benches --bench pfs_scale
if [[ "${PFS_BENCH_SKIP_CRITERION:-}" != "1" ]]; then
  cargo bench -p benches --bench pfs_store -- --noplot
fi
