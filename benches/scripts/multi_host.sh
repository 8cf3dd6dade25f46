#!/usr/bin/env bash
# Throughput of one job (2,000 datums, each sleeping 50 ms, parallelism 1 per host) on 1, 2
# and 3 engine hosts sharing a store: `pipectl serve` containers on a private Docker network
# with the machine's PostgreSQL (.ci/postgres) and s3s-fs (.ci/s3). Prints the job's
# duration per host count and the speed-up over one host (issue #16 target: >= 2.7x at
# three). The harness is `pipectl/tests/cli_multi_host.rs` (an ignored test); the dev
# profile is enough, since the user code's 50 ms dominate each datum.
#
#   bash benches/scripts/multi_host.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(bash .ci/postgres)"
source .ci/s3
cargo test -p pipectl --test cli_multi_host -- --ignored --nocapture \
  throughput_with_one_two_and_three_hosts 2>&1 | grep -E '^(hosts|[0-9] \|)|test result'
