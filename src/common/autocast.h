#pragma once
// RAII autocast state for one device type: the version-dependent autocast API lives here.
// LibTorch >= 2.4 takes the device type in set_autocast_enabled/dtype; older versions have no
// per-device C++ API, so there autocast_supported() is false and the scope does nothing.
//
// Invariant: no autocast cast outlives the outermost scope. LibTorch caches the reduced-precision
// copy of every leaf parameter it casts and keeps it until at::autocast::clear_cache(); the
// optimiser then updates the float32 weight in place, and a cache kept across steps would feed
// the next forward the weights of an earlier step. Python's torch.autocast clears the cache when
// its nesting level returns to 0; this scope does the same.
#include <ATen/autocast_mode.h>

#include "common/torch_compat.h"

namespace duet {

// Sets the autocast state for this scope and restores the caller's on exit.
class AutocastScope {
 public:
  AutocastScope(at::DeviceType device, bool enabled, at::ScalarType dtype) : device_(device) {
#if DUET_TORCH_AT_LEAST(2, 4)
    saved_enabled_ = at::autocast::is_autocast_enabled(device_);
    saved_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_enabled(device_, enabled);
    at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::increment_nesting();
#else
    (void)enabled;
    (void)dtype;
#endif
  }
  ~AutocastScope() {
#if DUET_TORCH_AT_LEAST(2, 4)
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device_, saved_enabled_);
    at::autocast::set_autocast_dtype(device_, saved_dtype_);
#endif
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  at::DeviceType device_;
  bool saved_enabled_ = false;
  at::ScalarType saved_dtype_ = at::kFloat;
};

}  // namespace duet
