#pragma once
// Symmetric InfoNCE (CLIP's contrastive loss) with a learnable temperature, in the form every
// rank of a distributed job computes (OpenCLIP's local loss with gather-with-grad): this rank's
// n rows against the gathered global batch of M rows.
//   x = image_local, y = text_local [n, D];  X = image_all, Y = text_all [M, D]
//   t = exp(logit_scale)
//   loss = ½ [ (1/n) Σ_i (LSE_j(t·x_i·Y_j) − t·x_i·Y_{offset+i})
//            + (1/n) Σ_i (LSE_j(t·y_i·X_j) − t·y_i·X_{offset+i}) ]
// One process is its own overload: image and text [N, D] are the whole batch (n = M, offset 0),
// the text→image logits are the transpose of the image→text ones, and the fast paths take both
// directions from one walk. Which form runs is the caller's explicit choice, never inferred from
// the tensors. Gradients reach all four embeddings and logit_scale (as d/d log t). Averaging the
// R ranks' losses gives the single-process loss of the global batch, and summing their gradients
// (what gather-with-grad does) gives its gradients, divided by R.
// Dtypes: float32 and float64; bfloat16 and float16 inputs are computed in float32 (the fused
// kernels multiply them on tensor cores with float32 accumulation). The loss is float64 for
// float64 inputs and float32 otherwise; gradients come back in the inputs' dtypes.
#include <torch/types.h>

#include "config/config.h"

namespace duet::losses {

// The implementation config selects (losses/implementation.h), config.tile_size for the tiled.
torch::Tensor infonce_loss(const torch::Tensor& image_local, const torch::Tensor& text_local,
                           const torch::Tensor& image_all, const torch::Tensor& text_all,
                           int64_t offset, const torch::Tensor& logit_scale,
                           const config::LossConfig& config);
torch::Tensor infonce_loss(const torch::Tensor& image, const torch::Tensor& text,
                           const torch::Tensor& logit_scale, const config::LossConfig& config);

// Plain ATen ops and autograd: materialises the [n, M] logits of both directions (one matrix
// and its transpose in one process, like OpenCLIP). Runs on any device; the test oracle.
torch::Tensor infonce_loss_reference(const torch::Tensor& image_local,
                                     const torch::Tensor& text_local,
                                     const torch::Tensor& image_all, const torch::Tensor& text_all,
                                     int64_t offset, const torch::Tensor& logit_scale);
torch::Tensor infonce_loss_reference(const torch::Tensor& image, const torch::Tensor& text,
                                     const torch::Tensor& logit_scale);

// One autograd function over [tile_size, tile_size] blocks (engines.h, tiled): never allocates
// the [n, M] logits; saves the inputs and O(n + M) log-sum-exp statistics, and backward
// recomputes the blocks. ATen ops only: any device.
torch::Tensor infonce_loss_tiled(const torch::Tensor& image_local, const torch::Tensor& text_local,
                                 const torch::Tensor& image_all, const torch::Tensor& text_all,
                                 int64_t offset, const torch::Tensor& logit_scale,
                                 int64_t tile_size);
torch::Tensor infonce_loss_tiled(const torch::Tensor& image, const torch::Tensor& text,
                                 const torch::Tensor& logit_scale, int64_t tile_size);

// The same autograd function over the fused CUDA kernels (kernels/): CUDA embeddings in float32,
// bfloat16 or float16, in builds with the kernels (implementation.h: fused_kernels_available).
torch::Tensor infonce_loss_fused(const torch::Tensor& image_local, const torch::Tensor& text_local,
                                 const torch::Tensor& image_all, const torch::Tensor& text_all,
                                 int64_t offset, const torch::Tensor& logit_scale);
torch::Tensor infonce_loss_fused(const torch::Tensor& image, const torch::Tensor& text,
                                 const torch::Tensor& logit_scale);

}  // namespace duet::losses
