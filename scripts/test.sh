#!/usr/bin/env bash
# Sets up (scripts/setup.sh: Debian packages, pinned LibTorch, build) and runs the whole test
# suite through CTest. Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` for the
# fast tests only or `-R test_config` for one executable.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --test-deps
cd "$ROOT/build"
ctest --output-on-failure -j "${DUET_JOBS:-2}" "$@"
