#!/usr/bin/env bash
# Per-datum overhead of the engine against xargs -P2, GNU make -j2 and Snakemake --cores 2.
#
# 10,000 one-file datums through `tr a-z A-Z` with 2 workers: full run, no-op re-run and
# re-run after adding one file. Every tool runs the same shell command per file:
#   sh -c 'tr a-z A-Z < IN > OUT'
# Results are printed as seconds and as ratios to the xargs full run (the floor).
#
# Usage: benches/scripts/engine_bench.sh [N_FILES] [SNAKEMAKE_FILES]
#   PIPECTL=path/to/pipectl (default target/release/pipectl, built if missing)
#   SNAKEMAKE=path/to/snakemake (default /tmp/smk-venv/bin/snakemake; skipped if absent).
#   Make a venv with: python3 -m venv /tmp/smk-venv && /tmp/smk-venv/bin/pip install snakemake
set -euo pipefail
N=${1:-10000}
NS=${2:-$N}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PIPECTL=${PIPECTL:-$ROOT/target/release/pipectl}
SNAKEMAKE=${SNAKEMAKE:-/tmp/smk-venv/bin/snakemake}
[ -x "$PIPECTL" ] || (cd "$ROOT" && cargo build --release -p pipectl)
W=$(mktemp -d "${TMPDIR:-/tmp}/engine-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/in"
python3 - "$W/in" "$N" <<'PY'
import sys, os
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(f"hello world number {i}\n")
PY
now() { date +%s.%N; }
t() { local s e; s=$(now); "$@" >/dev/null 2>&1; e=$(now); echo "$e - $s" | bc; }
declare -A R

# (a) xargs -P2 (no incrementality: a re-run redoes everything; we report the full run only)
mkdir -p "$W/xo"
R[xargs_full]=$(t sh -c "cd '$W/in' && ls | xargs -P2 -I{} sh -c 'tr a-z A-Z < \"\$1\" > \"$W/xo/\$1\"' _ {}")

# (b) make -j2 with a pattern rule
mkdir -p "$W/mk/in" "$W/mk/out"; cp "$W/in"/* "$W/mk/in/"
cat > "$W/mk/Makefile" <<'MK'
IN := $(wildcard in/*.txt)
OUT := $(patsubst in/%,out/%,$(IN))
all: $(OUT)
out/%.txt: in/%.txt
	sh -c 'tr a-z A-Z < $< > $@'
MK
R[make_full]=$(t make -C "$W/mk" -j2)
R[make_noop]=$(t make -C "$W/mk" -j2)
echo "one more file" > "$W/mk/in/zz-new.txt"
R[make_one]=$(t make -C "$W/mk" -j2)

# (c) Snakemake --cores 2, one wildcard rule
if [ -x "$SNAKEMAKE" ]; then
  mkdir -p "$W/sm/in"; ls "$W/in" | sed -n "1,${NS}p" | while read -r f; do cp "$W/in/$f" "$W/sm/in/"; done
  cat > "$W/sm/Snakefile" <<'SM'
NAMES, = glob_wildcards("in/{name}.txt")
rule all:
    input: expand("out/{name}.txt", name=NAMES)
rule upper:
    input: "in/{name}.txt"
    output: "out/{name}.txt"
    shell: "sh -c 'tr a-z A-Z < {input} > {output}'"
SM
  sm() { (cd "$W/sm" && "$SNAKEMAKE" --cores 2 --quiet all); }
  # the xargs floor over the same subset, for Snakemake's ratios
  mkdir -p "$W/sxo"
  R[xargs_smk_subset]=$(t sh -c "cd '$W/sm/in' && ls | xargs -P2 -I{} sh -c 'tr a-z A-Z < \"\$1\" > \"$W/sxo/\$1\"' _ {}")
  R[smk_full]=$(t sm)
  R[smk_noop]=$(t sm)
  echo "one more file" > "$W/sm/in/zz-new.txt"
  R[smk_one]=$(t sm)
fi

# (d) pipectl: the engine with the process executor, 2 warm workers
P="$PIPECTL --root $W/store"
$P create repo data >/dev/null
$P put file -r data@master:/ -f "$W/in" >/dev/null
cat > "$W/upper.yaml" <<'YAML'
pipeline: {name: upper}
transform:
  cmd: [sh, -c, 'tr a-z A-Z < "$data" > "/pfs/out/${data##*/}"']
parallelism_spec: {constant: 2}
input: {pfs: {repo: data, glob: "/*"}}
YAML
R[pipectl_full]=$(t $P create pipeline -f "$W/upper.yaml")
$P list job -o json | head -1 >&2
$P start commit data@master >/dev/null
R[pipectl_noop]=$(t $P finish commit data@master)
echo "one more file" > "$W/new.txt"
R[pipectl_one]=$(t $P put file data@master:/zz-new.txt -f "$W/new.txt")
$P list job -o json | head -1 >&2
# one datum through the executor alone, for "one-file re-run = overhead + one datum"
R[pipectl_cmd_only]=$(t sh -c 'tr a-z A-Z < /dev/null > /dev/null')

floor=${R[xargs_full]}
ratio() { echo "scale=3; $1 / $floor" | bc; }
echo "files: $N (snakemake: $NS)"
printf "%-18s %10s %8s\n" run seconds "x xargs"
for k in xargs_full make_full make_noop make_one pipectl_full pipectl_noop pipectl_one; do
  printf "%-18s %10.3f %8s\n" "$k" "${R[$k]}" "$(ratio "${R[$k]}")"
done
if [ -n "${R[smk_full]:-}" ]; then
  floor=${R[xargs_smk_subset]}
  echo "snakemake subset ($NS files), ratios to xargs over the same subset:"
  for k in xargs_smk_subset smk_full smk_noop smk_one; do
    printf "%-18s %10.3f %8s\n" "$k" "${R[$k]}" "$(ratio "${R[$k]}")"
  done
fi
