#pragma once
// Softmax statistics and gradients of a product matrix s = a·bᵀ [n, M] (a [n, D] already
// scaled by the temperature, b [M, D]) computed block by block: the walkers form one
// [tile, tile] block of s at a time per thread (one matmul per block) and never hold more, so
// working memory is O((n + M)·D + threads·tile²) whatever n and M are.
//   forward:  online (running max, running sum) log-sum-exp over the rows and optionally the
//             columns of s, both from the same blocks.
//   backward: recomputes each block, forms G = w_rows·softmax_rows(s) + w_cols·softmax_cols(s)
//             and accumulates G·b, Gᵀ·a and Σ G⊙s.
// Parallel over column tiles on the CPU, deterministic (tiling.h). Only ATen ops and no host
// reads, so it runs on any device (on CUDA, one block after another).
#include <torch/types.h>

namespace duet::losses::detail {

struct LogSumExp {
  torch::Tensor rows;  // [n]  log Σ_j exp(s_ij)
  torch::Tensor cols;  // [M]  log Σ_i exp(s_ij); undefined unless asked for
};

// a [n, D], b [M, D]: contiguous tensors of one device and one floating dtype, no autograd.
LogSumExp tiled_softmax_forward(const torch::Tensor& a, const torch::Tensor& b, int64_t tile_size,
                                bool with_cols);

// What the backward walk accumulates for G = w_rows·exp(s − lse.rows[:, None])
//                                        + w_cols·exp(s − lse.cols[None, :]).
// Each defined tensor is added to; undefined ones are skipped (with their matmuls).
struct SoftmaxGrads {
  torch::Tensor g_b;      // [n, D] += G·b
  torch::Tensor gt_a;     // [M, D] += Gᵀ·a
  torch::Tensor g_dot_s;  // 0-dim float64, += Σ_ij G_ij·s_ij (the derivative along log t)
};

// w_cols is ignored when lse.cols is undefined.
void tiled_softmax_backward(const torch::Tensor& a, const torch::Tensor& b, const LogSumExp& lse,
                            double w_rows, double w_cols, int64_t tile_size, SoftmaxGrads& grads);

}  // namespace duet::losses::detail
