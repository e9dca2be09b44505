#include "losses/implementation.h"

#include <mutex>

#include "common/error.h"
#include "common/logging.h"

namespace duet::losses {

std::string to_string(LossImplementation implementation) {
  switch (implementation) {
    case LossImplementation::kReference:
      return "reference";
    case LossImplementation::kTiled:
      return "tiled";
  }
  return "unknown";
}

bool fused_kernels_available() { return false; }

LossImplementation select_implementation(const config::LossConfig& config,
                                         const torch::Device& device) {
  const std::string& name = config.implementation;
  if (name == "reference") {
    return LossImplementation::kReference;
  }
  if (name == "tiled") {
    return LossImplementation::kTiled;
  }
  if (name == "fused") {
    // The fused kernels plug in here: return LossImplementation::kFused when available.
    fail(ErrorKind::kConfig,
         "loss.implementation 'fused' needs the CUDA kernels (not available in this build); use "
         "'auto', 'tiled' or 'reference'");
  }
  if (name == "auto") {
    if (device.is_cpu()) {
      return LossImplementation::kTiled;
    }
    // CUDA (or another accelerator) without fused kernels: the reference runs on any device.
    static std::once_flag logged;
    std::call_once(logged, [&] {
      log::get("loss")->info(
          "loss.implementation 'auto' on {}: the fused CUDA kernels are not built, using the "
          "reference loss (materialises the {} logits)",
          device.str(), config.type == "siglip" ? "n×M sigmoid" : "n×M softmax");
    });
    return LossImplementation::kReference;
  }
  fail(ErrorKind::kConfig,
       "loss.implementation '{}' is unknown (expected auto, reference, tiled or fused)", name);
}

}  // namespace duet::losses
