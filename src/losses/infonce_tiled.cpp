// InfoNCE's tiled engine (engines.h): ATen ops over [tile, tile] blocks of the logits, formed
// one at a time (tiled_softmax.h) — forward keeps running row/column log-sum-exp statistics,
// backward recomputes each block and accumulates the gradients. Never the [n, M] logits.
//
// With P_row = softmax over each row of s and P_col = softmax over each column, the gradient
// of the loss with respect to the logits is
//   one process (s = t·x·yᵀ, N×N):  G = (P_row + P_col) / 2N − I / N
//   gathered (a = t·x·Yᵀ, b = t·y·Xᵀ, n×M each):  G_a = (P_a − E) / 2n,  G_b = (P_b − E) / 2n
// where E has ones at (i, offset + i); then dx = t·G·Y, dY = t·Gᵀ·x, d(log t) = Σ G⊙s.
// The identity parts (E, I) touch only n rows and are applied outside the block walk.
// Arithmetic runs in float64 for float64 inputs and float32 otherwise; t and the upstream
// gradient stay tensors (no host read), so the engine runs on any device.
#include <torch/torch.h>

#include "losses/engines.h"
#include "losses/loss_checks.h"
#include "losses/tiled_softmax.h"
#include "losses/tiling.h"

namespace duet::losses::detail {
namespace {

// The input as a plain (no autograd) contiguous tensor of the compute dtype; a no-op for
// contiguous float32 / float64 inputs.
torch::Tensor plain(const torch::Tensor& t, torch::ScalarType dtype) {
  return t.detach().to(dtype).contiguous();
}

// Zeros like `like` when `needed`, else an undefined tensor (its matmuls are then skipped).
torch::Tensor zeros_if(bool needed, const torch::Tensor& like) {
  return needed ? torch::zeros_like(like) : torch::Tensor();
}

// t = exp(logit_scale) as a 0-dim tensor of `dtype`.
torch::Tensor temperature(const torch::Tensor& logit_scale, torch::ScalarType dtype) {
  return logit_scale.detach().to(dtype).exp();
}

}  // namespace

InfoNCEForward infonce_forward_tiled(const InfoNCEInputs& in, int64_t tile_size) {
  PlainComputeGuard guard;
  const auto dtype = compute_dtype(in.x_local.scalar_type());
  const torch::Tensor t = temperature(in.logit_scale, dtype);
  const int64_t n = in.x_local.size(0);
  if (in.one_process) {
    // One walk over s = t·x·yᵀ [N, N] gives both directions: its rows (image→text) and its
    // columns (text→image).
    const torch::Tensor y = plain(in.y_local, dtype);      // [N, D]
    const torch::Tensor a = plain(in.x_local, dtype) * t;  // [N, D], t·x
    const LogSumExp lse = tiled_softmax_forward(a, y, tile_size, true);
    const torch::Tensor diagonal = (a * y).sum(1);  // [N], s_ii
    const torch::Tensor loss =
        (lse.rows.sum() + lse.cols.sum()) / (2.0 * n) - diagonal.sum() / static_cast<double>(n);
    return {loss, lse.rows, lse.cols};
  }
  // Gathered: two n×M logit matrices, a = t·x·Yᵀ and b = t·y·Xᵀ, each walked for its rows.
  const torch::Tensor ax = plain(in.x_local, dtype) * t;  // [n, D]
  const torch::Tensor ay = plain(in.y_local, dtype) * t;  // [n, D]
  const torch::Tensor big_x = plain(in.x_all, dtype);     // [M, D]
  const torch::Tensor big_y = plain(in.y_all, dtype);     // [M, D]
  const torch::Tensor lse_a = tiled_softmax_forward(ax, big_y, tile_size, false).rows;
  const torch::Tensor lse_b = tiled_softmax_forward(ay, big_x, tile_size, false).rows;
  const torch::Tensor positive_a = (ax * big_y.narrow(0, in.offset, n)).sum(1);  // [n]
  const torch::Tensor positive_b = (ay * big_x.narrow(0, in.offset, n)).sum(1);  // [n]
  const torch::Tensor loss = ((lse_a - positive_a).sum() + (lse_b - positive_b).sum()) / (2.0 * n);
  return {loss, lse_a, lse_b};
}

InfoNCEGrads infonce_backward_tiled(const InfoNCEInputs& in, const InfoNCEForward& saved,
                                    const torch::Tensor& grad_output, InfoNCEWanted wanted,
                                    int64_t tile_size) {
  PlainComputeGuard guard;
  const auto dtype = compute_dtype(in.x_local.scalar_type());
  const torch::Tensor t = temperature(in.logit_scale, dtype);
  const torch::Tensor go = grad_output.detach().to(dtype);
  const torch::Tensor t_go = t * go;
  const int64_t n = in.x_local.size(0);
  const double w = 1.0 / (2.0 * n);
  InfoNCEGrads grads;

  if (in.one_process) {
    const torch::Tensor y = plain(in.y_local, dtype);      // [N, D]
    const torch::Tensor a = plain(in.x_local, dtype) * t;  // [N, D]
    SoftmaxGrads walk;
    walk.g_b = zeros_if(wanted.x_local, a);   // [N, D]  (P_row + P_col)/2N · y
    walk.gt_a = zeros_if(wanted.y_local, y);  // [N, D]  (P_row + P_col)ᵀ/2N · t·x
    if (wanted.logit_scale) {
      walk.g_dot_s = torch::zeros({}, a.options().dtype(torch::kFloat64));
    }
    tiled_softmax_backward(a, y, {saved.lse_a, saved.lse_b}, w, w, tile_size, walk);
    // The −I/N part of G, then the chain rule through s = t·x·yᵀ and the upstream gradient.
    if (walk.g_b.defined()) {
      grads.x_local = walk.g_b.sub_(y, 2.0 * w).mul_(t_go).to(in.x_local.scalar_type());
    }
    if (walk.gt_a.defined()) {
      grads.y_local = walk.gt_a.sub_(a, 2.0 * w).mul_(go).to(in.y_local.scalar_type());
    }
    if (walk.g_dot_s.defined()) {
      const torch::Tensor diagonal_sum = (a * y).sum().to(torch::kFloat64);
      grads.logit_scale = walk.g_dot_s.sub_(diagonal_sum, 2.0 * w)
                              .mul_(go.to(torch::kFloat64))
                              .to(in.logit_scale.scalar_type());
    }
    return grads;
  }

  const torch::Tensor ax = plain(in.x_local, dtype) * t;  // [n, D]
  const torch::Tensor ay = plain(in.y_local, dtype) * t;  // [n, D]
  const torch::Tensor big_x = plain(in.x_all, dtype);     // [M, D]
  const torch::Tensor big_y = plain(in.y_all, dtype);     // [M, D]
  // image→text rows: a = t·x·Yᵀ feeds x_local (rows) and y_all (columns).
  SoftmaxGrads walk_a;
  walk_a.g_b = zeros_if(wanted.x_local, ax);    // [n, D]  P_a/2n · Y
  walk_a.gt_a = zeros_if(wanted.y_all, big_y);  // [M, D]  P_aᵀ/2n · t·x
  // text→image rows: b = t·y·Xᵀ feeds y_local (rows) and x_all (columns).
  SoftmaxGrads walk_b;
  walk_b.g_b = zeros_if(wanted.y_local, ay);    // [n, D]  P_b/2n · X
  walk_b.gt_a = zeros_if(wanted.x_all, big_x);  // [M, D]  P_bᵀ/2n · t·y
  if (wanted.logit_scale) {
    walk_a.g_dot_s = torch::zeros({}, ax.options().dtype(torch::kFloat64));
    walk_b.g_dot_s = torch::zeros({}, ax.options().dtype(torch::kFloat64));
  }
  if (walk_a.g_b.defined() || walk_a.gt_a.defined() || wanted.logit_scale) {
    tiled_softmax_backward(ax, big_y, {saved.lse_a, torch::Tensor()}, w, 0.0, tile_size, walk_a);
  }
  if (walk_b.g_b.defined() || walk_b.gt_a.defined() || wanted.logit_scale) {
    tiled_softmax_backward(ay, big_x, {saved.lse_b, torch::Tensor()}, w, 0.0, tile_size, walk_b);
  }
  // The −E/2n part of G (positives at column offset + i), the chain rule and the upstream
  // gradient.
  const torch::Tensor y_pos = big_y.narrow(0, in.offset, n);
  const torch::Tensor x_pos = big_x.narrow(0, in.offset, n);
  if (walk_a.g_b.defined()) {
    grads.x_local = walk_a.g_b.sub_(y_pos, w).mul_(t_go).to(in.x_local.scalar_type());
  }
  if (walk_b.g_b.defined()) {
    grads.y_local = walk_b.g_b.sub_(x_pos, w).mul_(t_go).to(in.y_local.scalar_type());
  }
  if (walk_a.gt_a.defined()) {
    walk_a.gt_a.narrow(0, in.offset, n).sub_(ax, w);
    grads.y_all = walk_a.gt_a.mul_(go).to(in.y_all.scalar_type());
  }
  if (walk_b.gt_a.defined()) {
    walk_b.gt_a.narrow(0, in.offset, n).sub_(ay, w);
    grads.x_all = walk_b.gt_a.mul_(go).to(in.x_all.scalar_type());
  }
  if (wanted.logit_scale) {
    const torch::Tensor positives = ((ax * y_pos).sum() + (ay * x_pos).sum()).to(torch::kFloat64);
    grads.logit_scale = (walk_a.g_dot_s + walk_b.g_dot_s)
                            .sub_(positives, w)
                            .mul_(go.to(torch::kFloat64))
                            .to(in.logit_scale.scalar_type());
  }
  return grads;
}

}  // namespace duet::losses::detail
