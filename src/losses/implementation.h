#pragma once
// Which code computes a loss: the one dispatch point between the plain ATen reference, the tiled
// autograd functions and the fused CUDA kernels (kernels/). loss.implementation asks:
//   reference -> the reference, on any device
//   tiled     -> the tiled functions (ATen ops, any device; tuned for the CPU)
//   fused     -> the fused kernels: CUDA embeddings in a build that has them; otherwise a config
//                Error (config loading already refuses fused with train.device cpu)
//   auto      -> fused where the build and the device have it, tiled everywhere else
#include <optional>

#include <torch/types.h>

#include "config/config.h"

namespace duet::losses {

// The path that runs (what loss.implementation resolves to on a device).
enum class LossPath {
  kReference,  // plain ATen ops, materialises the n×M logits; also the test oracle
  kTiled,      // autograd functions over [tile, tile] blocks; never hold the n×M logits
  kFused,      // the CUDA kernels: O((n+M)·D) memory, never an n×M matrix
};

// True when this build has the fused CUDA loss kernels (compiled with DUET_WITH_CUDA).
bool fused_kernels_available();

// The kernels take float32, bfloat16 and float16 embeddings on a CUDA device.
bool fused_supports(const torch::Device& device, torch::ScalarType dtype);

// The path that runs for `config` on embeddings of `dtype` living on `device`. Throws a config
// Error for 'fused' where it cannot run (no kernels in this build, a non-CUDA device, float64).
LossPath select_implementation(const config::LossConfig& config, const torch::Device& device,
                               torch::ScalarType dtype);

// The same for the embeddings themselves (undefined: as on the CPU in float32; the loss's own
// checks then name what is wrong).
LossPath select_implementation(const config::LossConfig& config, const torch::Tensor& embeddings);

// Which path computed `loss`, a loss returned by these functions while autograd recorded it:
// kTiled or kFused as its autograd node says, kReference for any other recorded loss; nullopt
// when no graph was recorded (no_grad, or no input requires a gradient).
std::optional<LossPath> path_of(const torch::Tensor& loss);

}  // namespace duet::losses
