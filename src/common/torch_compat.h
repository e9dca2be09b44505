#pragma once
// The one place where differences between LibTorch versions live. duet targets the pinned
// PyPI LibTorch (scripts/setup.sh) and 2.11 (the GPU machine's); Debian's 1.13 is a fallback.
#include <torch/version.h>

#define DUET_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::scaled_dot_product_attention (fused attention kernels) arrived in 2.0.
#define DUET_TORCH_HAS_SDPA DUET_TORCH_AT_LEAST(2, 0)
