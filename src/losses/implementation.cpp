#include "losses/implementation.h"

#include <torch/csrc/autograd/function.h>

#include "common/dtype_names.h"
#include "common/error.h"
#include "duet/build_info.h"
#include "losses/engines.h"

namespace duet::losses {

bool fused_kernels_available() { return DUET_CUDA != 0; }

bool fused_supports(const torch::Device& device, torch::ScalarType dtype) {
  return device.is_cuda() &&
         (dtype == torch::kFloat32 || dtype == torch::kBFloat16 || dtype == torch::kFloat16);
}

LossPath select_implementation(const config::LossConfig& config, const torch::Device& device,
                               torch::ScalarType dtype) {
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
      if (!fused_supports(device, dtype)) {
        fail(ErrorKind::kConfig,
             "loss.implementation 'fused' takes float32, bfloat16 or float16 embeddings, got {}; "
             "use 'auto' or 'tiled'",
             dtype_name(dtype));
      }
      return LossPath::kFused;
    case config::LossImplementation::kAuto:
      break;
  }
  return fused_kernels_available() && fused_supports(device, dtype) ? LossPath::kFused
                                                                    : LossPath::kTiled;
}

LossPath select_implementation(const config::LossConfig& config, const torch::Tensor& embeddings) {
  return embeddings.defined()
             ? select_implementation(config, embeddings.device(), embeddings.scalar_type())
             : select_implementation(config, torch::kCPU, torch::kFloat32);
}

std::optional<LossPath> path_of(const torch::Tensor& loss) {
  if (!loss.defined() || loss.grad_fn() == nullptr) {
    return std::nullopt;
  }
  const torch::autograd::Node* node = loss.grad_fn().get();
  if (const auto path = detail::infonce_node_path(node)) {
    return static_cast<LossPath>(*path);
  }
  if (const auto path = detail::siglip_node_path(node)) {
    return static_cast<LossPath>(*path);
  }
  return LossPath::kReference;
}

}  // namespace duet::losses
