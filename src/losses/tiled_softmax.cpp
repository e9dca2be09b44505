#include "losses/tiled_softmax.h"

#include <limits>
#include <vector>

#include "losses/tiling.h"

namespace duet::losses::detail {
namespace {

// Folds one block into running log-sum-exp statistics along `dim` (1: rows, 0: columns):
// afterwards Σ exp(s) over everything seen so far = running_sum · exp(running_max).
//   s            [tr, tc]
//   running_max  [tr] for dim 1, [tc] for dim 0 (a view into the full statistics)
void fold_block(const torch::Tensor& s, int64_t dim, torch::Tensor running_max,
                torch::Tensor running_sum) {
  const torch::Tensor new_max = torch::maximum(running_max, s.amax(dim));
  const torch::Tensor block_sum = (s - new_max.unsqueeze(dim)).exp_().sum(dim);
  // Rescale the old sum to the new maximum; exp(-inf) = 0 handles the first block.
  running_sum.mul_((running_max - new_max).exp_()).add_(block_sum);
  running_max.copy_(new_max);
}

}  // namespace

LogSumExp tiled_softmax_forward(const torch::Tensor& a, const torch::Tensor& b, int64_t tile_size,
                                bool with_cols) {
  PlainComputeGuard plain;
  const auto options = a.options();
  const auto col_tiles = tiles(b.size(0), tile_size);
  const auto n_col_tiles = static_cast<int64_t>(col_tiles.size());
  const double lowest = -std::numeric_limits<double>::infinity();

  LogSumExp lse;
  lse.rows = torch::empty({a.size(0)}, options);  // [n]
  torch::Tensor col_max, col_sum;                 // [M], running over the row tiles
  if (with_cols) {
    col_max = torch::full({b.size(0)}, lowest, options);
    col_sum = torch::zeros({b.size(0)}, options);
  }
  // Per column tile, for the current row tile: each row's max over the block and its sum of
  // exp(s − max). [column tiles, tile]
  const torch::Tensor part_max = torch::empty({n_col_tiles, tile_size}, options);
  const torch::Tensor part_sum = torch::empty({n_col_tiles, tile_size}, options);

  for (const TileRange& r : tiles(a.size(0), tile_size)) {
    const torch::Tensor a_r = a.narrow(0, r.begin, r.size);  // [tr, D]
    parallel_over_tiles(a.device(), n_col_tiles, r.size * tile_size * a.size(1), [&](int64_t k) {
      const TileRange& c = col_tiles[static_cast<size_t>(k)];
      const torch::Tensor s = torch::mm(a_r, b.narrow(0, c.begin, c.size).t());  // [tr, tc]
      const torch::Tensor row_max = s.amax(1);                                   // [tr]
      part_max[k].narrow(0, 0, r.size).copy_(row_max);
      part_sum[k].narrow(0, 0, r.size).copy_((s - row_max.unsqueeze(1)).exp_().sum(1));
      if (with_cols) {  // this thread owns columns [c.begin, c.begin + c.size)
        fold_block(s, 0, col_max.narrow(0, c.begin, c.size), col_sum.narrow(0, c.begin, c.size));
      }
    });
    // Combine the row statistics of the column tiles, in column order.
    const torch::Tensor block_max = part_max.narrow(1, 0, r.size);  // [C, tr]
    const torch::Tensor block_sum = part_sum.narrow(1, 0, r.size);  // [C, tr]
    const torch::Tensor row_max = block_max.amax(0);                // [tr]
    lse.rows.narrow(0, r.begin, r.size)
        .copy_((block_sum * (block_max - row_max).exp_()).sum(0).log_().add_(row_max));
  }
  if (with_cols) {
    lse.cols = col_sum.log_().add_(col_max);
  }
  return lse;
}

void tiled_softmax_backward(const torch::Tensor& a, const torch::Tensor& b, const LogSumExp& lse,
                            double w_rows, double w_cols, int64_t tile_size, SoftmaxGrads& grads) {
  PlainComputeGuard plain;
  const bool with_cols = lse.cols.defined();
  const auto col_tiles = tiles(b.size(0), tile_size);
  const auto n_col_tiles = static_cast<int64_t>(col_tiles.size());
  // Per column tile, for the current row tile: G_rc·b_c. [column tiles, tile, D]
  torch::Tensor part_g_b;
  if (grads.g_b.defined()) {
    part_g_b = torch::empty({n_col_tiles, tile_size, b.size(1)}, a.options());
  }
  // Σ G⊙s per column tile, float64, on the device (no host read per block).
  torch::Tensor part_g_dot_s;
  if (grads.g_dot_s.defined()) {
    part_g_dot_s = torch::zeros({n_col_tiles}, a.options().dtype(torch::kFloat64));
  }

  for (const TileRange& r : tiles(a.size(0), tile_size)) {
    const torch::Tensor a_r = a.narrow(0, r.begin, r.size);                          // [tr, D]
    const torch::Tensor row_lse = lse.rows.narrow(0, r.begin, r.size).unsqueeze(1);  // [tr, 1]
    parallel_over_tiles(a.device(), n_col_tiles, r.size * tile_size * a.size(1), [&](int64_t k) {
      const TileRange& c = col_tiles[static_cast<size_t>(k)];
      const torch::Tensor b_c = b.narrow(0, c.begin, c.size);     // [tc, D]
      const torch::Tensor s = torch::mm(a_r, b_c.t());            // [tr, tc]
      const torch::Tensor g = (s - row_lse).exp_().mul_(w_rows);  // [tr, tc]
      if (with_cols) {
        const torch::Tensor col_lse = lse.cols.narrow(0, c.begin, c.size).unsqueeze(0);  // [1, tc]
        g.add_((s - col_lse).exp_(), w_cols);
      }
      if (part_g_dot_s.defined()) {  // this thread owns slot k
        part_g_dot_s.narrow(0, k, 1).add_(torch::dot(g.view(-1), s.view(-1)));
      }
      if (part_g_b.defined()) {
        torch::Tensor out = part_g_b[k].narrow(0, 0, r.size);  // [tr, D]
        torch::mm_out(out, g, b_c);
      }
      if (grads.gt_a.defined()) {  // this thread owns rows [c.begin, c.begin + c.size) of Gᵀ·a
        grads.gt_a.narrow(0, c.begin, c.size).addmm_(g.t(), a_r);
      }
    });
    if (part_g_b.defined()) {
      grads.g_b.narrow(0, r.begin, r.size).add_(part_g_b.narrow(1, 0, r.size).sum(0));
    }
  }
  if (part_g_dot_s.defined()) {
    grads.g_dot_s.add_(part_g_dot_s.sum());
  }
}

}  // namespace duet::losses::detail
