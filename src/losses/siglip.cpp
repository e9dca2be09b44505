// SigLIP: the reference (plain ATen), the tiled autograd function and the dispatch.
// The tiled path never allocates the [n, M] logits. With s = t·x·yᵀ + b it uses
//   softplus(−s) = softplus(s) − s
// to treat every pair as a negative inside the block walk and correct the n positives
// (j = offset + i) outside it, in O(n·D):
//   loss = (1/n) [ Σ_ij softplus(s_ij) − Σ_i s_{i,offset+i} ]
//   G = ∂loss/∂s = (σ(s) − E) / n,  E ones at (i, offset + i)
//   dx = t·G·y,  dy = t·Gᵀ·x,  d(log t) = Σ G⊙(s − b),  db = Σ G.
#include "losses/siglip.h"

#include <cmath>
#include <vector>

#include <torch/autograd.h>

#include "common/error.h"
#include "losses/implementation.h"
#include "losses/loss_checks.h"
#include "losses/tiling.h"

namespace duet::losses {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Which inputs want gradients, decided outside the autograd function (inside forward grad mode
// is off), so the forward walk does only the matmuls that are needed.
struct SigLipGradsWanted {
  bool x = false;
  bool y = false;
  bool scale = false;
  bool bias = false;
  bool any() const { return x || y || scale || bias; }
};

// Beyond this softplus(s) = s to the dtype's precision (exp(−s) < eps·s / 2).
double softplus_threshold(torch::ScalarType dtype) {
  return dtype == torch::kFloat64 ? 40.0 : 20.0;
}

struct SigLipTiledFunction : public torch::autograd::Function<SigLipTiledFunction> {
  // x_local [n, D], y_all [M, D], logit_scale and logit_bias 0-dim.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_local,
                               const torch::Tensor& y_all, const torch::Tensor& logit_scale,
                               const torch::Tensor& logit_bias, int64_t offset, int64_t tile_size,
                               SigLipGradsWanted wanted) {
    detail::PlainComputeGuard guard;
    const auto dtype = compute_dtype(x_local.scalar_type());
    const double t = std::exp(logit_scale.item<double>());
    const double bias = logit_bias.item<double>();
    const double threshold = softplus_threshold(dtype);
    const int64_t n = x_local.size(0);
    const torch::Tensor a = x_local.detach().to(dtype).contiguous() * t;  // [n, D], t·x
    const torch::Tensor y = y_all.detach().to(dtype).contiguous();        // [M, D]

    const auto col_tiles = detail::tiles(y.size(0), tile_size);
    const auto n_col_tiles = static_cast<int64_t>(col_tiles.size());
    // Sums per column tile (combined in column order at the end): Σ softplus(s), Σ σ(s)·(s − b),
    // Σ σ(s).
    std::vector<double> softplus_sum(col_tiles.size(), 0.0);
    std::vector<double> sig_dot_u(col_tiles.size(), 0.0);
    std::vector<double> sig_sum(col_tiles.size(), 0.0);
    // σ(s)·y of the current row tile per column tile [C, tile, D], summed into sig_y [n, D];
    // σ(s)ᵀ·t·x [M, D], each column tile's rows owned by one thread.
    torch::Tensor part_sig_y, sig_y, sig_a;
    if (wanted.x) {
      part_sig_y = torch::empty({n_col_tiles, tile_size, a.size(1)}, a.options());
      sig_y = torch::empty_like(a);
    }
    if (wanted.y) {
      sig_a = torch::zeros_like(y);
    }

    for (const detail::TileRange& r : detail::tiles(n, tile_size)) {
      const torch::Tensor a_r = a.narrow(0, r.begin, r.size);  // [tr, D]
      detail::parallel_over_tiles(n_col_tiles, r.size * tile_size * a.size(1), [&](int64_t k) {
        const auto slot = static_cast<size_t>(k);
        const detail::TileRange& c = col_tiles[slot];
        const torch::Tensor y_c = y.narrow(0, c.begin, c.size);  // [tc, D]
        const torch::Tensor u = torch::mm(a_r, y_c.t());         // [tr, tc], t·x·y
        const torch::Tensor s = u + bias;                        // [tr, tc], logits
        softplus_sum[slot] += torch::softplus(s, 1.0, threshold).sum().item<double>();
        if (!wanted.any()) {
          return;
        }
        const torch::Tensor sig = torch::sigmoid(s);  // [tr, tc], d softplus(s) / ds
        if (wanted.scale) {
          sig_dot_u[slot] += torch::dot(sig.view(-1), u.view(-1)).item<double>();
        }
        if (wanted.bias) {
          sig_sum[slot] += sig.sum().item<double>();
        }
        if (wanted.x) {
          torch::Tensor out = part_sig_y[k].narrow(0, 0, r.size);  // [tr, D]
          torch::mm_out(out, sig, y_c);
        }
        if (wanted.y) {
          sig_a.narrow(0, c.begin, c.size).addmm_(sig.t(), a_r);
        }
      });
      if (wanted.x) {
        sig_y.narrow(0, r.begin, r.size).copy_(part_sig_y.narrow(1, 0, r.size).sum(0));
      }
    }
    auto total = [](const std::vector<double>& parts) {
      double sum = 0.0;
      for (double v : parts) {
        sum += v;
      }
      return sum;
    };
    // The positives: u at (i, offset + i), t·x_i·y_{offset+i}.
    const torch::Tensor y_pos = y.narrow(0, offset, n);   // [n, D]
    const torch::Tensor positive_u = (a * y_pos).sum(1);  // [n]
    const double positive_sum = positive_u.sum().item<double>();
    const double inv_n = 1.0 / static_cast<double>(n);
    const torch::Tensor loss = torch::scalar_tensor(
        (total(softplus_sum) - positive_sum - bias * static_cast<double>(n)) * inv_n, a.options());

    // Gradients of the loss (upstream gradient 1), in full; backward scales them.
    torch::Tensor grad_x, grad_y, grad_scale, grad_bias;
    if (wanted.x) {
      grad_x = sig_y.sub_(y_pos).mul_(t * inv_n);  // t·G·y
    }
    if (wanted.y) {
      sig_a.narrow(0, offset, n).sub_(a);
      grad_y = sig_a.mul_(inv_n);  // t·Gᵀ·x
    }
    const auto scalar_options = a.options().dtype(torch::kFloat64);
    if (wanted.scale) {  // Σ G⊙(s − b)
      grad_scale = torch::scalar_tensor((total(sig_dot_u) - positive_sum) * inv_n, scalar_options);
    }
    if (wanted.bias) {  // Σ G
      grad_bias =
          torch::scalar_tensor((total(sig_sum) - static_cast<double>(n)) * inv_n, scalar_options);
    }
    ctx->save_for_backward({grad_x, grad_y, grad_scale, grad_bias});
    // The dtypes the gradients go back in, those of the inputs.
    ctx->saved_data["dtypes"] = std::vector<int64_t>{
        static_cast<int64_t>(x_local.scalar_type()), static_cast<int64_t>(y_all.scalar_type()),
        static_cast<int64_t>(logit_scale.scalar_type()),
        static_cast<int64_t>(logit_bias.scalar_type())};
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    detail::PlainComputeGuard guard;
    const auto saved = ctx->get_saved_variables();  // d loss / d input, inputs 0..3
    const auto dtypes = ctx->saved_data["dtypes"].toIntVector();
    const torch::Tensor& upstream = grad_outputs[0];  // 0-dim
    variable_list grads(7);
    for (size_t i = 0; i < saved.size(); ++i) {
      if (saved[i].defined() && ctx->needs_input_grad(i)) {
        grads[i] = (saved[i] * upstream.to(saved[i].scalar_type()))
                       .to(static_cast<torch::ScalarType>(dtypes[i]));
      }
    }
    return grads;
  }
};

}  // namespace

torch::Tensor siglip_loss_reference(const torch::Tensor& x_local, const torch::Tensor& y_all,
                                    int64_t offset, const torch::Tensor& logit_scale,
                                    const torch::Tensor& logit_bias) {
  check_siglip_inputs("siglip_loss_reference", x_local, y_all, offset, logit_scale, logit_bias);
  const auto dtype = compute_dtype(x_local.scalar_type());
  const int64_t n = x_local.size(0);
  // [n, M] logits; labels +1 at (i, offset + i), −1 elsewhere.
  const torch::Tensor logits =
      logit_scale.exp() * torch::mm(x_local.to(dtype), y_all.to(dtype).t()) + logit_bias;
  torch::Tensor labels = -torch::ones_like(logits);
  labels.narrow(1, offset, n).diagonal().fill_(1.0);
  return -torch::log_sigmoid(labels * logits).sum() / n;
}

torch::Tensor siglip_loss_tiled(const torch::Tensor& x_local, const torch::Tensor& y_all,
                                int64_t offset, const torch::Tensor& logit_scale,
                                const torch::Tensor& logit_bias, int64_t tile_size) {
  check_siglip_inputs("siglip_loss_tiled", x_local, y_all, offset, logit_scale, logit_bias);
  check_tiled("siglip_loss_tiled", tile_size, x_local.device());
  SigLipGradsWanted wanted;
  if (torch::GradMode::is_enabled()) {
    wanted.x = x_local.requires_grad();
    wanted.y = y_all.requires_grad();
    wanted.scale = logit_scale.requires_grad();
    wanted.bias = logit_bias.requires_grad();
  }
  return SigLipTiledFunction::apply(x_local, y_all, logit_scale, logit_bias, offset, tile_size,
                                    wanted);
}

torch::Tensor siglip_loss(const torch::Tensor& x_local, const torch::Tensor& y_all, int64_t offset,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                          const config::LossConfig& config) {
  const torch::Device device = x_local.defined() ? x_local.device() : torch::kCPU;
  const LossPath path = select_implementation(config, device);
  switch (path) {
    case LossPath::kReference:
      return siglip_loss_reference(x_local, y_all, offset, logit_scale, logit_bias);
    case LossPath::kTiled:
      return siglip_loss_tiled(x_local, y_all, offset, logit_scale, logit_bias, config.tile_size);
    case LossPath::kFused:
      break;
  }
  fail("siglip_loss: no implementation '{}'", name(path));
}

torch::Tensor siglip_loss(const torch::Tensor& image, const torch::Tensor& text,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                          const config::LossConfig& config) {
  return siglip_loss(image, text, 0, logit_scale, logit_bias, config);
}

}  // namespace duet::losses
