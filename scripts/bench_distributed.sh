#!/usr/bin/env bash
# Distributed contrastive loss on the CPU: loss + gather time against world size with the same
# per-rank batch (weak scaling), Gloo on loopback. For each world size R it runs
# build/tests/distributed/dist_bench twice: as R local ranks through scripts/launch_local.sh,
# and as one process doing one rank's share of the work without communication
# (--simulate R: its n rows against R·n), so that the difference is what distribution adds.
# Prints one Markdown table row per (loss, R) from rank 0's medians (docs/benchmarks.md).
#
#   scripts/bench_distributed.sh [--build DIR] [--worlds "1 2 4"] [--types "clip siglip"]
#                                [--n 256] [--dim 512] [--impl tiled] [--repeats 10] [--threads 1]
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
worlds="1 2 4"
types="clip siglip"
n=256
dim=512
impl=tiled
repeats=10
threads=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --worlds) worlds=$2; shift 2 ;;
    --types) types=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --dim) dim=$2; shift 2 ;;
    --impl) impl=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "bench_distributed.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bench="$build/tests/distributed/dist_bench"
if [[ ! -x "$bench" ]]; then
  echo "bench_distributed.sh: $bench not built (cmake --build $build --target dist_bench)" >&2
  exit 2
fi

field() {  # field NAME JSON
  sed -E "s/.*\"$1\": \"?([^,\"}]*)\"?.*/\1/" <<<"$2"
}

run() {  # run RANKS [dist_bench options...]: rank 0's JSON line
  local ranks=$1
  shift
  OMP_NUM_THREADS=$threads scripts/launch_local.sh -n "$ranks" -- "$bench" --n "$n" \
    --dim "$dim" --impl "$impl" --repeats "$repeats" --threads "$threads" "$@" |
    sed -n 's/^\[rank 0\] \({.*}\)$/\1/p'
}

echo "| loss | ranks | per-rank n | global batch | one rank's work alone ms | gather ms | loss fwd ms | bwd + reduce-scatter ms | total ms | added by distribution |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for type in $types; do
  for w in $worlds; do
    alone=$(run 1 --type "$type" --simulate "$w")
    if (( w > 1 )); then
      line=$(run "$w" --type "$type")
    else
      line=$alone
    fi
    if [[ -z "$line" || -z "$alone" ]]; then
      echo "bench_distributed.sh: no result for $w ranks ($type)" >&2
      exit 1
    fi
    base=$(field total_ms "$alone")
    total=$(field total_ms "$line")
    added=$(awk -v t="$total" -v b="$base" 'BEGIN { printf "%+.1f ms (%.2fx)", t - b, t / b }')
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$type" "$w" "$n" \
      "$(field global "$line")" "$base" "$(field gather_ms "$line")" "$(field loss_ms "$line")" \
      "$(field backward_ms "$line")" "$total" "$added"
  done
done
