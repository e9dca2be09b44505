#pragma once
// The gradients of one optimiser step, shared by the trainer and the tests that prove it.
//
// The contrastive batch is the whole accumulated batch: train.accum_steps micro-batches, and in
// a distributed run those of every rank. With accumulation the features of all micro-batches
// are first computed without gradients and cached (OpenCLIP's --accum-freq); each micro-batch
// is then re-encoded with gradients and the loss taken over the whole batch, its own rows live
// and the others cached, so activations stay at one micro-batch. logit_scale and logit_bias take
// their gradient from one pass only, as the full-batch loss gives it. Across ranks, each rank's
// rows are contrasted with the all-gathered batch (BatchGather); averaging the ranks' parameter
// gradients afterwards gives the gradient of the global loss.
//
// Invariant: no function here reads a tensor on the host, so a step on a GPU never waits for it
// (the trainer reads losses and norms only at logging steps, through host_reads.h).
#include <cstdint>
#include <functional>
#include <vector>

#include <torch/types.h>

#include "config/config.h"

namespace duet::data {
struct Batch;
}
namespace duet::models {
class ClipModelImpl;
}

namespace duet::train {

// How a rank reaches the global batch. Default: one process.
struct BatchGather {
  // [n, D] local rows -> [world * n, D] rows of all ranks in rank order, with gradients flowing
  // back to their owners. Empty in one process.
  std::function<torch::Tensor(const torch::Tensor&)> all_gather;
  int64_t rank = 0;
};

struct StepOptions {
  config::LossConfig loss;
  torch::Device device = torch::kCPU;
  // Encode under bf16 autocast. The bf16 features go to the loss (and through the gather) as
  // they are: the reference and tiled losses compute in float32 from them, the fused kernels
  // multiply them on tensor cores with float32 accumulation, as OpenCLIP's loss under autocast.
  bool bf16 = false;
  BatchGather gather;
};

// Adds to the model's parameter gradients those of the contrastive loss over `micro` (the
// accumulated local batch on options.device; every micro-batch the same size) and returns the
// loss this rank computed (its rows against the global batch): a 0-dim tensor on the device
// (float32, or float64 for float64 models), detached. Nothing is read on the host, so on a GPU the
// call only queues work.
torch::Tensor accumulate_gradients(models::ClipModelImpl& model,
                                   const std::vector<data::Batch>& micro,
                                   const StepOptions& options);

// What the step learned about its gradients, as 0-dim tensors on the device (no host read).
struct GradientCheck {
  torch::Tensor norm;    // global L2 norm of the gradients before clipping
  torch::Tensor finite;  // bool: the loss and the norm are finite (the step may be applied)
};

// Clips the global gradient norm of `parameters` to `max_norm` (no clipping when it is
// infinite), as torch.nn.utils.clip_grad_norm_ does, and checks `loss` and the norm for
// non-finite values - all on the device. Parameters without a gradient are ignored.
GradientCheck clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm,
                             const torch::Tensor& loss);

}  // namespace duet::train
