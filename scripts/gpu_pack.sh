#!/usr/bin/env bash
# Builds duet with CUDA and NCCL here and packs what a lent GPU machine needs to run
# scripts/gpu_check.sh into one folder, gpu_pack/ (ignored by git), of at most 60 MiB:
#   runtime.tar.xz  (xz: libarchive's libxml2 brings ICU's 31 MB of data) holding
#     bin/          duet and the test executables with [cuda] tests, stripped
#     lib/          the shared libraries they need that the GPU machine lacks: Debian's
#                   (yaml-cpp, spdlog, SentencePiece, libarchive and what it needs, libpng, ...),
#                   found with ldd. Not packed: LibTorch, the CUDA runtime, cuBLAS, cuDNN and
#                   NCCL (the GPU machine's torch 2.11.0+cu130 wheel in /opt/torch/.venv has
#                   them; gpu_check.sh puts its lib directories on LD_LIBRARY_PATH), the C
#                   library and the GPU driver
#     lib/compat/   this machine's libstdc++ and libgcc_s, used only when the GPU machine's
#                   own are too old for the binaries
#   data/idx/       Fashion-MNIST as IDX files: the whole test split and the first N training
#                   images (--train-images, default 30,000); gpu_check.sh turns them into shards
#   MANIFEST        the commit, the build, every packed file with its size, where each library
#                   came from
# The GPU machine has no Debian development packages and no network, hence the libraries.
# Usage: scripts/gpu_pack.sh [--build-dir DIR] [--out DIR] [--train-images N] [--jobs J]
#   --build-dir  a build configured with CUDA and NCCL on (default: build/ when it is one, else
#                build-gpu/, configured here with -DDUET_WITH_CUDA=ON -DDUET_WITH_NCCL=ON)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/gpu_pack"
BUILD_DIR=""
TRAIN_IMAGES=30000
JOBS="${DUET_JOBS:-2}"
LIMIT_MIB=60
IDX_DIR="${DUET_FASHION_MNIST_IDX:-/usr/share/datasets/fashion-mnist}"
# Executables with [cuda] tests (tests/*/CMakeLists.txt label them "cuda").
CUDA_TESTS=(test_train_cuda test_kernels_cuda)

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) BUILD_DIR="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --train-images) TRAIN_IMAGES="$2"; shift ;;
    --jobs) JOBS="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "gpu_pack.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "[gpu_pack] $*"; }
die() { echo "gpu_pack.sh: $*" >&2; exit 1; }

# ---- 1. a build with CUDA and NCCL ---------------------------------------------------------
has_cuda_and_nccl() {
  local info="$1/generated/duet/build_info.h"
  [[ -f "$info" ]] && grep -q "define DUET_CUDA 1" "$info" && grep -q "define DUET_NCCL 1" "$info"
}
if [[ -z "$BUILD_DIR" ]]; then
  if has_cuda_and_nccl "$ROOT/build"; then
    BUILD_DIR="$ROOT/build"
  else
    BUILD_DIR="$ROOT/build-gpu"
  fi
fi
VENV_PY="${DUET_VENV:-$ROOT/.venv}/bin/python"
[[ -x "$VENV_PY" ]] || die "no $VENV_PY: run scripts/setup.sh first (it installs the torch wheel)"
if ! has_cuda_and_nccl "$BUILD_DIR"; then
  say "configuring $BUILD_DIR with CUDA and NCCL on"
  command -v nvcc >/dev/null || die "nvcc is not on PATH: the pack needs the CUDA toolkit here"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$("$VENV_PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
    -DPython3_EXECUTABLE="$VENV_PY" -DDUET_WITH_CUDA=ON -DDUET_WITH_NCCL=ON \
    >"$BUILD_DIR.configure.log" 2>&1 || { cat "$BUILD_DIR.configure.log" >&2; exit 1; }
  grep -E "^-- duet:" "$BUILD_DIR.configure.log" || true
fi
has_cuda_and_nccl "$BUILD_DIR" || die "$BUILD_DIR is not configured with CUDA and NCCL on"
say "building duet ${CUDA_TESTS[*]} in $BUILD_DIR ($JOBS jobs)"
cmake --build "$BUILD_DIR" -j "$JOBS" --target duet "${CUDA_TESTS[@]}"

# ---- 2. binaries, stripped -----------------------------------------------------------------
rm -rf "$OUT"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib/compat" "$OUT/data/idx"
binaries=("$BUILD_DIR/duet")
for t in "${CUDA_TESTS[@]}"; do
  found="$(find "$BUILD_DIR/tests" -type f -name "$t" -perm -u+x | head -n 1)"
  [[ -n "$found" ]] || die "test executable $t was not built in $BUILD_DIR"
  binaries+=("$found")
done
for b in "${binaries[@]}"; do
  strip --strip-unneeded -o "$STAGE/bin/$(basename "$b")" "$b"
done

# ---- 3. the shared libraries the GPU machine lacks ------------------------------------------
# Provided there: the torch wheel's own libraries and the nvidia-* wheels beside it (the same
# wheel version as here), the C library's parts, the dynamic loader and the driver.
TORCH_LIB="$("$VENV_PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
SITE="$(dirname "$(dirname "$TORCH_LIB")")"
provided_by_gpu_machine() {
  local name="$1" path="$2"
  case "$path" in "$TORCH_LIB"/*|"$SITE"/nvidia/*) return 0 ;; esac
  case "$name" in
    linux-vdso.so*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*) return 0 ;;
    libutil.so*|libcrypt.so*) return 0 ;;  # glibc's too
    libcuda.so*|libnvidia-*) return 0 ;;
    # The CUDA toolkit's runtime libraries: the wheel ships the same ones (nvidia/*/lib).
    libcudart.so*|libcublas*.so*|libcudnn*.so*|libnccl.so*|libnvrtc*.so*|libnvJitLink*.so*|libcusparse*.so*|libcufft*.so*|libcurand*.so*|libcusolver*.so*|libnvToolsExt*.so*|libcupti*.so*) return 0 ;;
  esac
  return 1
}
declare -A packed=()
LIBRARIES="$STAGE/libraries.txt"
: >"$LIBRARIES"
for b in "$STAGE"/bin/*; do
  while read -r name arrow path rest; do
    [[ "$arrow" == "=>" && -n "$path" && "$path" != "not" ]] || continue
    [[ -n "${packed[$name]:-}" ]] && continue
    packed[$name]=1
    if provided_by_gpu_machine "$name" "$path"; then
      echo "$name: provided by the GPU machine ($path here)" >>"$LIBRARIES"
      continue
    fi
    case "$name" in
      libstdc++.so*|libgcc_s.so*) dest="$STAGE/lib/compat" ;;
      *) dest="$STAGE/lib" ;;
    esac
    cp -L "$path" "$dest/$name"
    echo "$name: packed from $path" >>"$LIBRARIES"
  done < <(LD_LIBRARY_PATH="$TORCH_LIB" ldd "$b")
done
if grep -q "not found" < <(for b in "$STAGE"/bin/*; do LD_LIBRARY_PATH="$TORCH_LIB" ldd "$b"; done); then
  die "some library of the binaries was not found here (ldd says 'not found')"
fi
say "compressing binaries and libraries ($(du -sh "$STAGE" | cut -f1)) into runtime.tar.xz"
(cd "$STAGE" && find bin lib -type f -printf '  %p %s\n' | sort) >"$STAGE/contents.txt"
tar -C "$STAGE" -cf - bin lib | xz -T "$JOBS" -6 >"$OUT/runtime.tar.xz"

# ---- 4. Fashion-MNIST: the test split and a part of the training split -------------------
[[ -f "$IDX_DIR/t10k-images-idx3-ubyte.gz" ]] ||
  die "no Fashion-MNIST IDX files in $IDX_DIR (Debian's dataset-fashion-mnist; setup.sh installs it)"
python3 - "$IDX_DIR" "$OUT/data/idx" "$TRAIN_IMAGES" <<'EOF'
# Copies the test split and the first N training images and labels, with the IDX headers'
# counts rewritten to N.
import gzip, shutil, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    shutil.copyfile(f"{src}/{name}", f"{dst}/{name}")
for name, item in (("train-images-idx3-ubyte.gz", 28 * 28), ("train-labels-idx1-ubyte.gz", 1)):
    data = gzip.open(f"{src}/{name}").read()
    dims = data[3]
    count = struct.unpack(">I", data[4:8])[0]
    take = min(n, count)
    header = data[:4] + struct.pack(">I", take) + data[8:4 + 4 * dims]
    body = data[4 + 4 * dims:4 + 4 * dims + take * item]
    with gzip.open(f"{dst}/{name}", "wb", compresslevel=9) as out:
        out.write(header + body)
EOF

# ---- 5. manifest and size -----------------------------------------------------------------
{
  echo "duet GPU pack"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), build directory $BUILD_DIR"
  echo "duet --version here: $(LD_LIBRARY_PATH="$TORCH_LIB" "$STAGE/bin/duet" --version 2>&1)"
  echo "torch wheel here: $("$VENV_PY" -c 'import torch; print(torch.__version__)')"
  echo "Fashion-MNIST training images packed: $TRAIN_IMAGES"
  echo
  echo "files:"
  (cd "$OUT" && find . -type f ! -name MANIFEST -printf '  %p %s\n' | sort)
  echo
  echo "in runtime.tar.xz (uncompressed sizes):"
  cat "$STAGE/contents.txt"
  echo
  echo "libraries:"
  sed 's/^/  /' "$LIBRARIES"
} >"$OUT/MANIFEST"
bytes=$(du -sb "$OUT" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
say "packed $OUT: $mib MiB ($(find "$OUT" -type f | wc -l) files)"
if (( bytes > LIMIT_MIB * 1048576 )); then
  die "the pack is $mib MiB, over its $LIMIT_MIB MiB limit (the GPU machine takes 64 MiB with the working tree); pack fewer --train-images"
fi
