#pragma once
// Gradient checkpointing for LibTorch C++, which has no torch.utils.checkpoint: a custom
// autograd Function runs `fn` without recording a graph in forward, keeps only its input, and in
// backward recomputes `fn` with grad enabled to differentiate it. Memory per checkpointed block
// drops from all its activations to its input, for one extra forward in backward.
//
// Invariants: `fn` must be deterministic (no RNG, no state changes), since backward recomputes
// it; `parameters` must list every tensor `fn` reads that needs a gradient, because they are
// the Function's inputs and receive their gradients through it. The autocast state at forward
// time is restored for the recomputation, so bf16 runs recompute in bf16.
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace duet::models {

using CheckpointedFn = std::function<at::Tensor(const at::Tensor&)>;

// fn(input), with fn's activations recomputed in backward instead of stored. Outside grad mode
// it simply calls fn.
at::Tensor checkpoint(CheckpointedFn fn, const at::Tensor& input,
                      const std::vector<at::Tensor>& parameters);

}  // namespace duet::models
