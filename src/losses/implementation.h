#pragma once
// Which code computes a loss: the one dispatch point between the plain ATen reference, the tiled
// autograd functions and the fused CUDA kernels (kernels/). loss.implementation asks:
//   reference -> the reference, on any device
//   tiled     -> the tiled functions (ATen ops, any device; tuned for the CPU)
//   fused     -> the fused kernels: CUDA embeddings in a build that has them; otherwise a config
//                Error (config loading already refuses fused with train.device cpu)
//   auto      -> fused where the build and the device have it, tiled everywhere else
#include <torch/types.h>

#include "config/config.h"

namespace duet::losses {

// The path that runs (what loss.implementation resolves to on a device).
enum class LossPath {
  kReference,  // plain ATen ops, materialises the n×M logits; also the test oracle
  kTiled,      // autograd functions over [tile, tile] blocks; never hold the n×M logits
  kFused,      // the CUDA kernels: O((n+M)·D) memory, never an n×M matrix
};

const char* name(LossPath path);

// True when this build has the fused CUDA loss kernels (compiled with DUET_WITH_CUDA).
bool fused_kernels_available();

// The path that runs for `config` on embeddings living on `device`. Throws a config Error for
// 'fused' where it cannot run (no kernels in this build, or a non-CUDA device).
LossPath select_implementation(const config::LossConfig& config, const torch::Device& device);

}  // namespace duet::losses
