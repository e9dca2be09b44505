#pragma once
// SigLIP's pairwise sigmoid loss with a learnable temperature and bias, in the form every rank
// of a distributed job computes: this rank's n image rows against the gathered M text rows.
//   x = x_local [n, D] (images), y = y_all [M, D] (texts), t = exp(logit_scale), b = logit_bias
//   loss = (1/n) Σ_i Σ_j softplus(−z_ij (t·x_i·y_j + b))
//   z_ij = +1 at j = offset + i, −1 elsewhere
// (softplus(−z·s) = −log σ(z·s), computed stably). One process is its own overload: x and y are
// the batch's image and text embeddings and offset is 0. Each pair (i, j) is counted once, so the
// local losses of R ranks with n rows each average to the single-process loss of the global
// batch. Gradients reach x_local, y_all, logit_scale (as d/d log t) and logit_bias.
// Dtypes as for InfoNCE: float32, float64; bfloat16/float16 computed in float32 (fused: on tensor
// cores with float32 accumulation); the loss is float64 for float64 inputs, float32 otherwise.
#include <torch/types.h>

#include "config/config.h"

namespace duet::losses {

// The implementation config selects, with config.tile_size for the tiled one.
torch::Tensor siglip_loss(const torch::Tensor& x_local, const torch::Tensor& y_all, int64_t offset,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                          const config::LossConfig& config);
torch::Tensor siglip_loss(const torch::Tensor& image, const torch::Tensor& text,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                          const config::LossConfig& config);

// Plain ATen ops and autograd, like OpenCLIP's SigLipLoss: materialises the [n, M] logits and
// labels. Runs on any device; the test oracle.
torch::Tensor siglip_loss_reference(const torch::Tensor& x_local, const torch::Tensor& y_all,
                                    int64_t offset, const torch::Tensor& logit_scale,
                                    const torch::Tensor& logit_bias);

// One autograd function (engines.h) over [tile_size, tile_size] blocks: forward walks them for
// the loss, backward walks them again for the gradients; never the [n, M] logits, saved state
// the inputs. ATen ops only: any device.
torch::Tensor siglip_loss_tiled(const torch::Tensor& x_local, const torch::Tensor& y_all,
                                int64_t offset, const torch::Tensor& logit_scale,
                                const torch::Tensor& logit_bias, int64_t tile_size);
torch::Tensor siglip_loss_tiled(const torch::Tensor& image, const torch::Tensor& text,
                                const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                                int64_t tile_size);

// The same function over the fused CUDA kernels: CUDA embeddings in float32, bfloat16 or
// float16, in builds with the kernels.
torch::Tensor siglip_loss_fused(const torch::Tensor& x_local, const torch::Tensor& y_all,
                                int64_t offset, const torch::Tensor& logit_scale,
                                const torch::Tensor& logit_bias);
torch::Tensor siglip_loss_fused(const torch::Tensor& image, const torch::Tensor& text,
                                const torch::Tensor& logit_scale, const torch::Tensor& logit_bias);

}  // namespace duet::losses
