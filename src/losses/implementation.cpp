#include "losses/implementation.h"

#include "common/error.h"

namespace duet::losses {

const char* name(LossPath path) {
  switch (path) {
    case LossPath::kReference:
      return "reference";
    case LossPath::kTiled:
      return "tiled";
    case LossPath::kFused:
      return "fused";
  }
  return "?";
}

bool fused_kernels_available() { return false; }  // the kernels (kernels/) are not wired yet

LossPath select_implementation(const config::LossConfig& config, const torch::Device& device) {
  const bool fused_here = fused_kernels_available() && device.is_cuda();
  switch (config.implementation) {
    case config::LossImplementation::kReference:
      return LossPath::kReference;
    case config::LossImplementation::kTiled:
      return LossPath::kTiled;
    case config::LossImplementation::kFused:
      if (!fused_kernels_available()) {
        fail(ErrorKind::kConfig,
             "loss.implementation 'fused' needs the CUDA kernels, which this build does not have "
             "(configure with the CUDA toolkit; `duet --version` lists what is built); use "
             "'auto', 'tiled' or 'reference'");
      }
      if (!device.is_cuda()) {
        fail(ErrorKind::kConfig,
             "loss.implementation 'fused' runs on CUDA devices only, but the embeddings are on "
             "{}; use 'auto' (tiled off CUDA) or 'tiled'",
             device.str());
      }
      return LossPath::kFused;
    case config::LossImplementation::kAuto:
      break;
  }
  return fused_here ? LossPath::kFused : LossPath::kTiled;
}

}  // namespace duet::losses
