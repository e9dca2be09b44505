// InfoNCE: the reference (plain ATen), the tiled autograd functions and the dispatch.
// The tiled path never allocates the [n, M] logits: blocks of s = t·x·Yᵀ are formed one at a
// time (tiled_softmax.h), forward keeps running row/column log-sum-exp statistics, backward
// recomputes each block (one matmul) and accumulates the gradients (two more).
//
// With P_row = softmax over each row of s and P_col = softmax over each column, the gradient
// of the loss with respect to the logits is
//   one process (s = t·x·yᵀ, N×N):  G = (P_row + P_col) / 2N − I / N
//   general (a = t·x·Yᵀ, b = t·y·Xᵀ, n×M each):  G_a = (P_a − E) / 2n,  G_b = (P_b − E) / 2n
// where E has ones at (i, offset + i); then dx = t·G·Y, dY = t·Gᵀ·x, d(log t) = Σ G⊙s.
// The identity parts (E, I) touch only n rows and are applied outside the block walk.
#include "losses/infonce.h"

#include <cmath>

#include <torch/autograd.h>
#include <torch/nn/functional/loss.h>

#include "common/error.h"
#include "losses/implementation.h"
#include "losses/loss_checks.h"
#include "losses/tiled_softmax.h"
#include "losses/tiling.h"

namespace duet::losses {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The input as a plain (no autograd) contiguous tensor of the compute dtype; a no-op for
// contiguous float32 / float64 inputs.
torch::Tensor plain(const torch::Tensor& t, torch::ScalarType dtype) {
  return t.detach().to(dtype).contiguous();
}

// Zeros like `like` when `needed`, else an undefined tensor (its matmuls are then skipped).
torch::Tensor zeros_if(bool needed, const torch::Tensor& like) {
  return needed ? torch::zeros_like(like) : torch::Tensor();
}

// One process: image_all is image_local and text_all is text_local, so the text→image logits
// are the transpose of the image→text ones and a single walk over s = t·x·yᵀ [N, N] gives the
// row statistics (image→text) and the column statistics (text→image).
struct InfoNCESymmetricFunction : public torch::autograd::Function<InfoNCESymmetricFunction> {
  // image, text [N, D]; logit_scale 0-dim.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& image,
                               const torch::Tensor& text, const torch::Tensor& logit_scale,
                               int64_t tile_size) {
    detail::PlainComputeGuard guard;
    const auto dtype = compute_dtype(image.scalar_type());
    const double t = std::exp(logit_scale.item<double>());
    const int64_t n = image.size(0);
    const torch::Tensor y = plain(text, dtype);       // [N, D]
    const torch::Tensor a = plain(image, dtype) * t;  // [N, D], t·x
    const detail::LogSumExp lse = detail::tiled_softmax_forward(a, y, tile_size, true);
    const torch::Tensor diagonal = (a * y).sum(1);  // [N], s_ii
    const torch::Tensor loss =
        (lse.rows.sum() + lse.cols.sum()) / (2.0 * n) - diagonal.sum() / static_cast<double>(n);
    ctx->save_for_backward({image, text, logit_scale, lse.rows, lse.cols});
    ctx->saved_data["tile_size"] = tile_size;
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    detail::PlainComputeGuard guard;
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &image = saved[0], &text = saved[1], &logit_scale = saved[2];
    const detail::LogSumExp lse{saved[3], saved[4]};
    const int64_t tile_size = ctx->saved_data["tile_size"].toInt();
    const auto dtype = compute_dtype(image.scalar_type());
    const double t = std::exp(logit_scale.item<double>());
    const double go = grad_outputs[0].item<double>();
    const int64_t n = image.size(0);
    const double w = 1.0 / (2.0 * n);

    const torch::Tensor y = plain(text, dtype);       // [N, D]
    const torch::Tensor a = plain(image, dtype) * t;  // [N, D]
    detail::SoftmaxGrads grads;
    grads.g_b = zeros_if(ctx->needs_input_grad(0), a);   // [N, D]  (P_row + P_col)/2N · y
    grads.gt_a = zeros_if(ctx->needs_input_grad(1), y);  // [N, D]  (P_row + P_col)ᵀ/2N · t·x
    if (ctx->needs_input_grad(2)) {
      grads.g_dot_s = torch::zeros({}, a.options().dtype(torch::kFloat64));
    }
    detail::tiled_softmax_backward(a, y, lse, w, w, tile_size, grads);

    // The −I/N part of G, then the chain rule through s = t·x·yᵀ and the upstream gradient.
    torch::Tensor grad_image, grad_text, grad_scale;
    if (grads.g_b.defined()) {
      grad_image = grads.g_b.sub_(y, 2.0 * w).mul_(t * go).to(image.scalar_type());
    }
    if (grads.gt_a.defined()) {
      grad_text = grads.gt_a.sub_(a, 2.0 * w).mul_(go).to(text.scalar_type());
    }
    if (grads.g_dot_s.defined()) {
      const torch::Tensor diagonal_sum = (a * y).sum().to(torch::kFloat64);
      grad_scale = grads.g_dot_s.sub_(diagonal_sum, 2.0 * w).mul_(go).to(logit_scale.options());
    }
    return {grad_image, grad_text, grad_scale, torch::Tensor()};
  }
};

// This rank's rows against the gathered batch: two n×M logit matrices (image→text rows
// a = t·x·Yᵀ and text→image rows b = t·y·Xᵀ), each walked for its row statistics.
struct InfoNCELocalFunction : public torch::autograd::Function<InfoNCELocalFunction> {
  // image_local, text_local [n, D]; image_all, text_all [M, D]; logit_scale 0-dim.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& image_local,
                               const torch::Tensor& text_local, const torch::Tensor& image_all,
                               const torch::Tensor& text_all, const torch::Tensor& logit_scale,
                               int64_t offset, int64_t tile_size) {
    detail::PlainComputeGuard guard;
    const auto dtype = compute_dtype(image_local.scalar_type());
    const double t = std::exp(logit_scale.item<double>());
    const int64_t n = image_local.size(0);
    const torch::Tensor ax = plain(image_local, dtype) * t;  // [n, D]
    const torch::Tensor ay = plain(text_local, dtype) * t;   // [n, D]
    const torch::Tensor big_x = plain(image_all, dtype);     // [M, D]
    const torch::Tensor big_y = plain(text_all, dtype);      // [M, D]
    const torch::Tensor lse_a = detail::tiled_softmax_forward(ax, big_y, tile_size, false).rows;
    const torch::Tensor lse_b = detail::tiled_softmax_forward(ay, big_x, tile_size, false).rows;
    const torch::Tensor positive_a = (ax * big_y.narrow(0, offset, n)).sum(1);  // [n]
    const torch::Tensor positive_b = (ay * big_x.narrow(0, offset, n)).sum(1);  // [n]
    const torch::Tensor loss =
        ((lse_a - positive_a).sum() + (lse_b - positive_b).sum()) / (2.0 * n);
    ctx->save_for_backward(
        {image_local, text_local, image_all, text_all, logit_scale, lse_a, lse_b});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["tile_size"] = tile_size;
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    detail::PlainComputeGuard guard;
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &image_local = saved[0], &text_local = saved[1], &image_all = saved[2],
                        &text_all = saved[3], &logit_scale = saved[4];
    const int64_t offset = ctx->saved_data["offset"].toInt();
    const int64_t tile_size = ctx->saved_data["tile_size"].toInt();
    const auto dtype = compute_dtype(image_local.scalar_type());
    const double t = std::exp(logit_scale.item<double>());
    const double go = grad_outputs[0].item<double>();
    const int64_t n = image_local.size(0);
    const double w = 1.0 / (2.0 * n);

    const torch::Tensor ax = plain(image_local, dtype) * t;  // [n, D]
    const torch::Tensor ay = plain(text_local, dtype) * t;   // [n, D]
    const torch::Tensor big_x = plain(image_all, dtype);     // [M, D]
    const torch::Tensor big_y = plain(text_all, dtype);      // [M, D]
    const bool need_scale = ctx->needs_input_grad(4);

    // image→text rows: a = t·x·Yᵀ feeds image_local (rows) and text_all (columns).
    detail::SoftmaxGrads grads_a;
    grads_a.g_b = zeros_if(ctx->needs_input_grad(0), ax);      // [n, D]  P_a/2n · Y
    grads_a.gt_a = zeros_if(ctx->needs_input_grad(3), big_y);  // [M, D]  P_aᵀ/2n · t·x
    // text→image rows: b = t·y·Xᵀ feeds text_local (rows) and image_all (columns).
    detail::SoftmaxGrads grads_b;
    grads_b.g_b = zeros_if(ctx->needs_input_grad(1), ay);      // [n, D]  P_b/2n · X
    grads_b.gt_a = zeros_if(ctx->needs_input_grad(2), big_x);  // [M, D]  P_bᵀ/2n · t·y
    if (need_scale) {
      grads_a.g_dot_s = torch::zeros({}, ax.options().dtype(torch::kFloat64));
      grads_b.g_dot_s = torch::zeros({}, ax.options().dtype(torch::kFloat64));
    }
    if (grads_a.g_b.defined() || grads_a.gt_a.defined() || need_scale) {
      detail::tiled_softmax_backward(ax, big_y, {saved[5], torch::Tensor()}, w, 0.0, tile_size,
                                     grads_a);
    }
    if (grads_b.g_b.defined() || grads_b.gt_a.defined() || need_scale) {
      detail::tiled_softmax_backward(ay, big_x, {saved[6], torch::Tensor()}, w, 0.0, tile_size,
                                     grads_b);
    }

    // The −E/2n part of G (positives at column offset + i), the chain rule and the upstream
    // gradient.
    torch::Tensor grad_image_local, grad_text_local, grad_image_all, grad_text_all, grad_scale;
    if (grads_a.g_b.defined()) {
      grad_image_local = grads_a.g_b.sub_(big_y.narrow(0, offset, n), w)
                             .mul_(t * go)
                             .to(image_local.scalar_type());
    }
    if (grads_b.g_b.defined()) {
      grad_text_local =
          grads_b.g_b.sub_(big_x.narrow(0, offset, n), w).mul_(t * go).to(text_local.scalar_type());
    }
    if (grads_a.gt_a.defined()) {
      grads_a.gt_a.narrow(0, offset, n).sub_(ax, w);
      grad_text_all = grads_a.gt_a.mul_(go).to(text_all.scalar_type());
    }
    if (grads_b.gt_a.defined()) {
      grads_b.gt_a.narrow(0, offset, n).sub_(ay, w);
      grad_image_all = grads_b.gt_a.mul_(go).to(image_all.scalar_type());
    }
    if (need_scale) {
      const torch::Tensor positives =
          ((ax * big_y.narrow(0, offset, n)).sum() + (ay * big_x.narrow(0, offset, n)).sum())
              .to(torch::kFloat64);
      grad_scale =
          (grads_a.g_dot_s + grads_b.g_dot_s).sub_(positives, w).mul_(go).to(logit_scale.options());
    }
    return {grad_image_local, grad_text_local, grad_image_all, grad_text_all,
            grad_scale,       torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor infonce_loss_reference(const torch::Tensor& image_local,
                                     const torch::Tensor& text_local,
                                     const torch::Tensor& image_all, const torch::Tensor& text_all,
                                     int64_t offset, const torch::Tensor& logit_scale) {
  check_infonce_inputs("infonce_loss_reference", image_local, text_local, image_all, text_all,
                       offset, logit_scale);
  const auto dtype = compute_dtype(image_local.scalar_type());
  const int64_t n = image_local.size(0);
  const torch::Tensor t = logit_scale.exp();
  // [n, M] image→text logits; labels: local row i matches global column offset + i.
  const torch::Tensor logits_per_image =
      t * torch::mm(image_local.to(dtype), text_all.to(dtype).t());
  const bool one_process = same_tensor(image_all, image_local) && same_tensor(text_all, text_local);
  const torch::Tensor logits_per_text =
      one_process ? logits_per_image.t()
                  : t * torch::mm(text_local.to(dtype), image_all.to(dtype).t());  // [n, M]
  const torch::Tensor labels =
      torch::arange(offset, offset + n, image_local.options().dtype(torch::kLong));
  namespace F = torch::nn::functional;
  return (F::cross_entropy(logits_per_image, labels) + F::cross_entropy(logits_per_text, labels)) /
         2;
}

torch::Tensor infonce_loss_tiled(const torch::Tensor& image_local, const torch::Tensor& text_local,
                                 const torch::Tensor& image_all, const torch::Tensor& text_all,
                                 int64_t offset, const torch::Tensor& logit_scale,
                                 int64_t tile_size) {
  check_infonce_inputs("infonce_loss_tiled", image_local, text_local, image_all, text_all, offset,
                       logit_scale);
  check_tiled("infonce_loss_tiled", tile_size, image_local.device());
  if (same_tensor(image_all, image_local) && same_tensor(text_all, text_local)) {
    return InfoNCESymmetricFunction::apply(image_local, text_local, logit_scale, tile_size);
  }
  return InfoNCELocalFunction::apply(image_local, text_local, image_all, text_all, logit_scale,
                                     offset, tile_size);
}

torch::Tensor infonce_loss(const torch::Tensor& image_local, const torch::Tensor& text_local,
                           const torch::Tensor& image_all, const torch::Tensor& text_all,
                           int64_t offset, const torch::Tensor& logit_scale,
                           const config::LossConfig& config) {
  const torch::Device device = image_local.defined() ? image_local.device() : torch::kCPU;
  const LossPath path = select_implementation(config, device);
  switch (path) {
    case LossPath::kReference:
      return infonce_loss_reference(image_local, text_local, image_all, text_all, offset,
                                    logit_scale);
    case LossPath::kTiled:
      return infonce_loss_tiled(image_local, text_local, image_all, text_all, offset, logit_scale,
                                config.tile_size);
    case LossPath::kFused:
      break;
  }
  fail("infonce_loss: no implementation '{}'", name(path));
}

torch::Tensor infonce_loss(const torch::Tensor& image, const torch::Tensor& text,
                           const torch::Tensor& logit_scale, const config::LossConfig& config) {
  return infonce_loss(image, text, image, text, 0, logit_scale, config);
}

}  // namespace duet::losses
