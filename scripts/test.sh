#!/usr/bin/env bash
# Sets up (scripts/setup.sh: Debian packages, pinned LibTorch, build) and runs the whole test
# suite through CTest. Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` for the
# fast tests only or `-R test_config` for one executable. Under CI=true (as .ci/run is run) a test
# whose prerequisite is missing fails instead of skipping.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --test-deps
cd "$ROOT/build"
status=0
ctest --output-on-failure -j "${DUET_JOBS:-2}" "$@" || status=$?
# A test whose prerequisite is missing passes with a "SKIPPED:" warning outside CI (and fails
# under CI=true), so ctest shows nothing of it: list those lines here.
log="Testing/Temporary/LastTest.log"
if [[ -f "$log" ]] && grep -q "SKIPPED: " "$log"; then
  echo "[test] skipped for a missing prerequisite (these fail under CI=true):"
  grep -h "SKIPPED: " "$log" | sed 's/^ */  /' | sort -u
fi
# Tests that need a GPU skip visibly without one, under CI too (CI has none): count them.
if [[ -f "$log" ]]; then
  device_skips=$(grep -hc "SKIPPED \[cuda\]: " "$log" || true)
  echo "[test] $device_skips GPU test case(s) skipped: no CUDA device here (scripts/gpu_check.sh runs them on a GPU, docs/gpu.md)"
fi
exit "$status"
