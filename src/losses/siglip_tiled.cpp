// SigLIP's tiled engine (engines.h): ATen ops over [tile, tile] blocks, never the [n, M]
// logits. With s = t·x·yᵀ + b it uses softplus(−s) = softplus(s) − s to treat every pair as a
// negative inside the block walk and correct the n positives (j = offset + i) outside it:
//   loss = (1/n) [ Σ_ij softplus(s_ij) − Σ_i s_{i,offset+i} ]
//   G = ∂loss/∂s = (σ(s) − E) / n,  E ones at (i, offset + i)
//   dx = t·G·y,  dy = t·Gᵀ·x,  d(log t) = Σ G⊙(s − b),  db = Σ G.
// Forward walks the blocks for the loss alone; backward walks them again for the gradients
// asked for (one matmul per block to recompute s, one per gradient) — the same contract as the
// other engines, at the cost of recomputing s (the fused kernels do the same).
// Parallel over column tiles on the CPU; per-tile sums stay device tensors (no host reads), so
// it runs on any device; float64 inputs in float64, others in float32.
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "losses/engines.h"
#include "losses/loss_checks.h"
#include "losses/tiling.h"

namespace duet::losses::detail {
namespace {

// Beyond this softplus(s) = s to the dtype's precision (exp(−s) < eps·s / 2).
double softplus_threshold(torch::ScalarType dtype) {
  return dtype == torch::kFloat64 ? 40.0 : 20.0;
}

// The operands in the compute dtype, without autograd: a = t·x [n, D], y [M, D], t and b.
struct Plain {
  torch::ScalarType dtype;
  torch::Tensor t, bias, a, y;

  explicit Plain(const SigLipInputs& in)
      : dtype(compute_dtype(in.x_local.scalar_type())),
        t(in.logit_scale.detach().to(dtype).exp()),
        bias(in.logit_bias.detach().to(dtype)),
        a(in.x_local.detach().to(dtype).contiguous() * t),
        y(in.y_all.detach().to(dtype).contiguous()) {}
};

// Per column tile, float64 sums on the device, combined in column order at the end.
torch::Tensor slots(int64_t count, const torch::Tensor& like) {
  return torch::zeros({count}, like.options().dtype(torch::kFloat64));
}

}  // namespace

torch::Tensor siglip_forward_tiled(const SigLipInputs& in, int64_t tile_size) {
  PlainComputeGuard guard;
  const Plain p(in);
  const double threshold = softplus_threshold(p.dtype);
  const int64_t n = p.a.size(0);
  const auto col_tiles = tiles(p.y.size(0), tile_size);
  const auto n_col_tiles = static_cast<int64_t>(col_tiles.size());
  const torch::Tensor softplus_sum = slots(n_col_tiles, p.a);  // Σ softplus(s) per column tile

  for (const TileRange& r : tiles(n, tile_size)) {
    const torch::Tensor a_r = p.a.narrow(0, r.begin, r.size);  // [tr, D]
    parallel_over_tiles(
        p.a.device(), n_col_tiles, r.size * tile_size * p.a.size(1), [&](int64_t k) {
          const TileRange& c = col_tiles[static_cast<size_t>(k)];
          const torch::Tensor s = torch::mm(a_r, p.y.narrow(0, c.begin, c.size).t()) + p.bias;
          softplus_sum.narrow(0, k, 1).add_(torch::softplus(s, 1.0, threshold).sum());
        });
  }
  // The positives: s at (i, offset + i) is t·x_i·y_{offset+i} + b.
  const torch::Tensor positive_u = (p.a * p.y.narrow(0, in.offset, n)).sum();
  const torch::Tensor total = softplus_sum.sum().to(p.dtype) - positive_u - p.bias * n;
  return total / static_cast<double>(n);
}

SigLipGrads siglip_backward_tiled(const SigLipInputs& in, const torch::Tensor& grad_output,
                                  SigLipWanted wanted, int64_t tile_size) {
  PlainComputeGuard guard;
  const Plain p(in);
  const int64_t n = p.a.size(0);
  const int64_t dim = p.a.size(1);
  const double inv_n = 1.0 / static_cast<double>(n);
  const torch::Tensor go = grad_output.detach().to(p.dtype);
  const auto col_tiles = tiles(p.y.size(0), tile_size);
  const auto n_col_tiles = static_cast<int64_t>(col_tiles.size());

  // Σ σ(s)·(s − b) and Σ σ(s) per column tile; σ(s)·y of the current row tile per column tile
  // [C, tile, D], summed into sig_y [n, D]; σ(s)ᵀ·t·x [M, D], each column tile's rows owned by
  // one thread.
  torch::Tensor sig_dot_u, sig_sum, part_sig_y, sig_y, sig_a;
  if (wanted.logit_scale) {
    sig_dot_u = slots(n_col_tiles, p.a);
  }
  if (wanted.logit_bias) {
    sig_sum = slots(n_col_tiles, p.a);
  }
  if (wanted.x_local) {
    part_sig_y = torch::empty({n_col_tiles, tile_size, dim}, p.a.options());
    sig_y = torch::empty_like(p.a);
  }
  if (wanted.y_all) {
    sig_a = torch::zeros_like(p.y);
  }

  for (const TileRange& r : tiles(n, tile_size)) {
    const torch::Tensor a_r = p.a.narrow(0, r.begin, r.size);  // [tr, D]
    parallel_over_tiles(p.a.device(), n_col_tiles, r.size * tile_size * dim, [&](int64_t k) {
      const TileRange& c = col_tiles[static_cast<size_t>(k)];
      const torch::Tensor y_c = p.y.narrow(0, c.begin, c.size);  // [tc, D]
      const torch::Tensor u = torch::mm(a_r, y_c.t());           // [tr, tc], t·x·y
      const torch::Tensor sig = torch::sigmoid(u + p.bias);      // [tr, tc], d softplus(s)/ds
      if (sig_dot_u.defined()) {
        sig_dot_u.narrow(0, k, 1).add_(torch::dot(sig.view(-1), u.view(-1)));
      }
      if (sig_sum.defined()) {
        sig_sum.narrow(0, k, 1).add_(sig.sum());
      }
      if (part_sig_y.defined()) {
        torch::Tensor out = part_sig_y[k].narrow(0, 0, r.size);  // [tr, D]
        torch::mm_out(out, sig, y_c);
      }
      if (sig_a.defined()) {
        sig_a.narrow(0, c.begin, c.size).addmm_(sig.t(), a_r);
      }
    });
    if (sig_y.defined()) {
      sig_y.narrow(0, r.begin, r.size).copy_(part_sig_y.narrow(1, 0, r.size).sum(0));
    }
  }

  // The positives' −E part, the chain rule and the upstream gradient.
  const torch::Tensor y_pos = p.y.narrow(0, in.offset, n);  // [n, D]
  SigLipGrads grads;
  if (wanted.x_local) {  // t·G·y
    grads.x_local = sig_y.sub_(y_pos).mul_(p.t * go * inv_n).to(in.x_local.scalar_type());
  }
  if (wanted.y_all) {  // t·Gᵀ·x
    sig_a.narrow(0, in.offset, n).sub_(p.a);
    grads.y_all = sig_a.mul_(go * inv_n).to(in.y_all.scalar_type());
  }
  const torch::Tensor go64 = go.to(torch::kFloat64) * inv_n;
  if (wanted.logit_scale) {  // Σ G⊙(s − b)
    const torch::Tensor positive_u = (p.a * y_pos).sum().to(torch::kFloat64);
    grads.logit_scale = ((sig_dot_u.sum() - positive_u) * go64).to(in.logit_scale.scalar_type());
  }
  if (wanted.logit_bias) {  // Σ G
    grads.logit_bias =
        ((sig_sum.sum() - static_cast<double>(n)) * go64).to(in.logit_bias.scalar_type());
  }
  return grads;
}

}  // namespace duet::losses::detail
