#!/usr/bin/env bash
# Sets up a Debian 12 machine for duet and builds it. Idempotent: re-running only does what is
# missing. Steps:
#   1. Debian packages for the build, the tests and the default run (root or sudo).
#   2. A virtualenv in .venv with the pinned PyPI torch wheel, whose LibTorch duet links against
#      (and, with --test-deps, the Python oracles the tests compare against).
#   3. CMake configure + build in build/ (Release, Ninja, -j2 unless DUET_JOBS is set).
#
# Usage: scripts/setup.sh [--no-build] [--test-deps] [--build-dir DIR] [--target T]
#   --target T builds only target T (the quickstart builds just `duet`, not the tests).
set -euo pipefail

TORCH_VERSION="${DUET_TORCH_VERSION:-2.11.0}"  # pinned: the GPU machine's version too
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DUET_VENV:-$ROOT/.venv}"
BUILD_DIR="$ROOT/build"
JOBS="${DUET_JOBS:-2}"
DO_BUILD=1
TARGET_ARGS=()
TEST_DEPS=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) DO_BUILD=0 ;;
    --test-deps) TEST_DEPS=1 ;;
    --target) TARGET_ARGS=(--target "$2"); shift ;;
    --build-dir) BUILD_DIR="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "[setup] $*"; }

# ---- 1. Debian packages ------------------------------------------------------------------
DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3 python3-venv
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev catch2
  libsentencepiece-dev sentencepiece libutf8proc-dev
  libjpeg-dev libturbojpeg0-dev libpng-dev libwebp-dev libarchive-dev zlib1g-dev
  libgloo-dev ccache   # Gloo headers for the CPU communicator; ccache speeds up rebuilds
  libisal-dev   # CRC-32C of TensorBoard's TFRecords (Debian 12 has no libcrc32c)
  iproute2   # `ip netns`: the two-host distributed test, which must run under CI
  libopenblas-dev   # without it LibTorch builds that use the system BLAS get the reference one
  libboost-context-dev   # fibers of the host execution layer that runs CUDA kernels in tests
  dataset-fashion-mnist
  chromium   # headless: renders the run report in tests/cli
)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages present"
fi

# ---- 2. Python virtualenv with the pinned torch wheel -------------------------------------
PY="${DUET_PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
have_torch="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [[ "$have_torch" != "$TORCH_VERSION" ]]; then
  say "installing torch==$TORCH_VERSION (LibTorch for the build) into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION" numpy
else
  say "torch $TORCH_VERSION present"
fi
if [[ $TEST_DEPS -eq 1 ]]; then
  if ! "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
    "$VENV/bin/pip" install -q --disable-pip-version-check numpy
  fi
  # TensorBoard's own event reader is the oracle for duet's event files (tests/train).
  if ! "$VENV/bin/python" -c 'import tensorboard' 2>/dev/null; then
    "$VENV/bin/pip" install -q --disable-pip-version-check tensorboard
  fi
  # PIL + torchvision are the peer pipeline in scripts/bench_data.py (0.26 matches torch 2.11).
  if ! "$VENV/bin/python" -c 'import PIL, torchvision' 2>/dev/null; then
    "$VENV/bin/pip" install -q --disable-pip-version-check pillow "torchvision==0.26.0"
  fi
  # transformers, OpenCLIP and safetensors load duet's exports in the export oracles
  # (tests/export/oracle.py); they run offline on random weights.
  if ! "$VENV/bin/python" -c 'import transformers, open_clip, safetensors' 2>/dev/null; then
    "$VENV/bin/pip" install -q --disable-pip-version-check transformers safetensors open_clip_torch
  fi
  # LAION's CLIP_benchmark is the oracle of duet eval --dataset (tests/cli/clip_benchmark_oracle.py):
  # the same dataset directory and model give the same metrics. Its CLI imports requests without
  # declaring it.
  if ! "$VENV/bin/python" -c 'import clip_benchmark.cli' 2>/dev/null; then
    "$VENV/bin/pip" install -q --disable-pip-version-check clip-benchmark requests
  fi
fi
TORCH_PREFIX="$("$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"

# ---- 3. configure and build -------------------------------------------------------------
if [[ $DO_BUILD -eq 1 ]]; then
  say "configuring $BUILD_DIR"
  mkdir -p "$BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DPython3_EXECUTABLE="$VENV/bin/python" \
    ${DUET_CMAKE_ARGS:-} >"$BUILD_DIR/configure.log" 2>&1 || {
      cat "$BUILD_DIR/configure.log" >&2; exit 1; }
  grep -E "^-- duet:" "$BUILD_DIR/configure.log" || true
  say "building with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGET_ARGS[@]}"
  say "done: $BUILD_DIR/duet"
fi
