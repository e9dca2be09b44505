#pragma once
// The one place where differences between LibTorch versions live. duet targets the pinned
// PyPI LibTorch (scripts/setup.sh) and 2.11 (the GPU machine's); Debian's 1.13 is a fallback.
#include <torch/version.h>

#define DUET_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// LibTorch >= 2.4 takes the device type in set_autocast_enabled/dtype; older versions have no
// per-device C++ autocast API (common/autocast.h then does nothing, and bf16 is refused at load).
namespace duet {
constexpr bool autocast_supported() { return DUET_TORCH_AT_LEAST(2, 4); }
}  // namespace duet

// at::scaled_dot_product_attention (fused attention kernels) arrived in 2.0.
#define DUET_TORCH_HAS_SDPA DUET_TORCH_AT_LEAST(2, 0)
