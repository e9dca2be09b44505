#pragma once
// All-gather with gradients, the heart of OpenCLIP's distributed contrastive loss: every rank
// contrasts its local rows against the whole global batch, so the gathered embeddings must
// carry gradients back to the rank that computed them.
//   forward:  local [n, D] on each rank -> all [R·n, D], rank r's rows at [r·n, (r+1)·n)
//   backward: grad_all [R·n, D] on each rank -> grad_local = Σ_ranks grad_all[r·n, (r+1)·n)
//             (reduce-scatter sum: the adjoint of the gather)
// With each rank's loss L_r computed from its local rows and the gathered ones
// (losses::ContrastiveBatch with offset = r·n), the local embeddings' gradients on rank r are
// then those of Σ_r L_r; after parameter gradients are averaged over ranks (GradientSync) every
// rank holds the gradient of (1/R) Σ_r L_r, which the losses define to be the single-process
// loss of the concatenated global batch. tests/distributed proves it in float64.
#include <torch/types.h>

#include "distributed/communicator.h"

namespace duet::distributed {

// `local` [n, ...], the same shape on every rank. World size 1 returns `local` itself, so the
// single-process graph is untouched. The communicator must outlive the backward pass.
torch::Tensor all_gather_with_grad(Communicator& communicator, const torch::Tensor& local);

}  // namespace duet::distributed
