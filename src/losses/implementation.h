#pragma once
// Which implementation computes a loss: the one dispatch point between the plain ATen reference,
// the tiled CPU autograd functions and (issue 6) the fused CUDA kernels. loss.implementation:
//   reference -> reference on any device
//   tiled     -> tiled (ATen ops only, so it runs anywhere; it is tuned for the CPU)
//   auto      -> tiled on the CPU; on CUDA the fused kernel once built, the reference until then
//                (logged once)
//   fused     -> the CUDA kernels; a config Error while this build has none
#include <string>

#include <torch/types.h>

#include "config/config.h"

namespace duet::losses {

enum class LossImplementation {
  kReference,  // plain ATen ops, materialises the n×M logits; also the test oracle
  kTiled,      // autograd function over [tile, tile] blocks; never holds the n×M logits
};

std::string to_string(LossImplementation implementation);

// True once the fused CUDA loss kernels are compiled in (kernels/, issue 6).
bool fused_kernels_available();

// The implementation that runs for `config` on embeddings living on `device`. Throws a config
// Error for 'fused' without the kernels, or for a name it does not know.
LossImplementation select_implementation(const config::LossConfig& config,
                                         const torch::Device& device);

}  // namespace duet::losses
