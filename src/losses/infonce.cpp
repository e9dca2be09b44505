// InfoNCE: the reference (plain ATen), one autograd function for the tiled and fused engines
// (engines.h: forward saves the inputs and two log-sum-exp vectors, backward asks the engine for
// the gradients that are needed), and the dispatch.
#include "losses/infonce.h"

#include <torch/autograd.h>
#include <torch/nn/functional/loss.h>

#include "common/error.h"
#include "losses/engines.h"
#include "losses/implementation.h"
#include "losses/loss_checks.h"

namespace duet::losses {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct InfoNCEFunction : public torch::autograd::Function<InfoNCEFunction> {
  // x_local, y_local [n, D]; x_all, y_all [M, D] (empty in one process); logit_scale 0-dim;
  // path: LossPath::kTiled or kFused.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_local,
                               const torch::Tensor& y_local, const torch::Tensor& x_all,
                               const torch::Tensor& y_all, const torch::Tensor& logit_scale,
                               int64_t offset, bool one_process, int64_t path, int64_t tile_size) {
    const detail::InfoNCEInputs in{x_local, y_local,     x_all,      y_all,
                                   offset,  one_process, logit_scale};
    const detail::InfoNCEForward out = static_cast<LossPath>(path) == LossPath::kFused
                                           ? detail::infonce_forward_fused(in)
                                           : detail::infonce_forward_tiled(in, tile_size);
    ctx->save_for_backward({x_local, y_local, x_all, y_all, logit_scale, out.lse_a, out.lse_b});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["one_process"] = one_process;
    ctx->saved_data["path"] = path;
    ctx->saved_data["tile_size"] = tile_size;
    return out.loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    const detail::InfoNCEInputs in{s[0],
                                   s[1],
                                   s[2],
                                   s[3],
                                   ctx->saved_data["offset"].toInt(),
                                   ctx->saved_data["one_process"].toBool(),
                                   s[4]};
    const detail::InfoNCEForward saved{torch::Tensor(), s[5], s[6]};
    const detail::InfoNCEWanted wanted{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                       ctx->needs_input_grad(2), ctx->needs_input_grad(3),
                                       ctx->needs_input_grad(4)};
    const auto path = static_cast<LossPath>(ctx->saved_data["path"].toInt());
    const detail::InfoNCEGrads g =
        path == LossPath::kFused
            ? detail::infonce_backward_fused(in, saved, grad_outputs[0], wanted)
            : detail::infonce_backward_tiled(in, saved, grad_outputs[0], wanted,
                                             ctx->saved_data["tile_size"].toInt());
    return {g.x_local,       g.y_local,       g.x_all,         g.y_all,        g.logit_scale,
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor cross_entropy_mean(const torch::Tensor& logits, const torch::Tensor& labels) {
  return torch::nn::functional::cross_entropy(logits, labels);
}

torch::Tensor apply_gathered(const char* op, LossPath path, const torch::Tensor& image_local,
                             const torch::Tensor& text_local, const torch::Tensor& image_all,
                             const torch::Tensor& text_all, int64_t offset,
                             const torch::Tensor& logit_scale, int64_t tile_size) {
  check_infonce_inputs(op, image_local, text_local, image_all, text_all, offset, logit_scale);
  return InfoNCEFunction::apply(image_local, text_local, image_all, text_all, logit_scale, offset,
                                false, static_cast<int64_t>(path), tile_size);
}

torch::Tensor apply_one_process(const char* op, LossPath path, const torch::Tensor& image,
                                const torch::Tensor& text, const torch::Tensor& logit_scale,
                                int64_t tile_size) {
  check_infonce_inputs(op, image, text, image, text, 0, logit_scale);
  // The gathered operands' slots hold empty placeholders (autograd Functions take no undefined
  // inputs); the engines do not read them in one process.
  const torch::Tensor unused = torch::empty({0}, image.options());
  return InfoNCEFunction::apply(image, text, unused, unused, logit_scale, int64_t{0}, true,
                                static_cast<int64_t>(path), tile_size);
}

}  // namespace

namespace detail {
std::optional<int64_t> infonce_node_path(const torch::autograd::Node* node) {
  const auto* ours = dynamic_cast<const torch::autograd::CppNode<InfoNCEFunction>*>(node);
  if (ours == nullptr) {
    return std::nullopt;
  }
  return ours->ctx_.saved_data.at("path").toInt();
}
}  // namespace detail

torch::Tensor infonce_loss_reference(const torch::Tensor& image_local,
                                     const torch::Tensor& text_local,
                                     const torch::Tensor& image_all, const torch::Tensor& text_all,
                                     int64_t offset, const torch::Tensor& logit_scale) {
  check_infonce_inputs("infonce_loss_reference", image_local, text_local, image_all, text_all,
                       offset, logit_scale);
  const auto dtype = compute_dtype(image_local.scalar_type());
  const int64_t n = image_local.size(0);
  const torch::Tensor t = logit_scale.exp();
  // [n, M] logits of each direction; labels: local row i matches global column offset + i.
  const torch::Tensor logits_per_image =
      t * torch::mm(image_local.to(dtype), text_all.to(dtype).t());
  const torch::Tensor logits_per_text =
      t * torch::mm(text_local.to(dtype), image_all.to(dtype).t());
  const torch::Tensor labels =
      torch::arange(offset, offset + n, image_local.options().dtype(torch::kLong));
  return (cross_entropy_mean(logits_per_image, labels) +
          cross_entropy_mean(logits_per_text, labels)) /
         2;
}

torch::Tensor infonce_loss_reference(const torch::Tensor& image, const torch::Tensor& text,
                                     const torch::Tensor& logit_scale) {
  check_infonce_inputs("infonce_loss_reference", image, text, image, text, 0, logit_scale);
  const auto dtype = compute_dtype(image.scalar_type());
  // [N, N] image→text logits; text→image is its transpose, as in OpenCLIP.
  const torch::Tensor logits = logit_scale.exp() * torch::mm(image.to(dtype), text.to(dtype).t());
  const torch::Tensor labels = torch::arange(image.size(0), image.options().dtype(torch::kLong));
  return (cross_entropy_mean(logits, labels) + cross_entropy_mean(logits.t(), labels)) / 2;
}

torch::Tensor infonce_loss_tiled(const torch::Tensor& image_local, const torch::Tensor& text_local,
                                 const torch::Tensor& image_all, const torch::Tensor& text_all,
                                 int64_t offset, const torch::Tensor& logit_scale,
                                 int64_t tile_size) {
  check_tile_size("infonce_loss_tiled", tile_size);
  return apply_gathered("infonce_loss_tiled", LossPath::kTiled, image_local, text_local, image_all,
                        text_all, offset, logit_scale, tile_size);
}

torch::Tensor infonce_loss_tiled(const torch::Tensor& image, const torch::Tensor& text,
                                 const torch::Tensor& logit_scale, int64_t tile_size) {
  check_tile_size("infonce_loss_tiled", tile_size);
  return apply_one_process("infonce_loss_tiled", LossPath::kTiled, image, text, logit_scale,
                           tile_size);
}

torch::Tensor infonce_loss_fused(const torch::Tensor& image_local, const torch::Tensor& text_local,
                                 const torch::Tensor& image_all, const torch::Tensor& text_all,
                                 int64_t offset, const torch::Tensor& logit_scale) {
  return apply_gathered("infonce_loss_fused", LossPath::kFused, image_local, text_local, image_all,
                        text_all, offset, logit_scale, 0);
}

torch::Tensor infonce_loss_fused(const torch::Tensor& image, const torch::Tensor& text,
                                 const torch::Tensor& logit_scale) {
  return apply_one_process("infonce_loss_fused", LossPath::kFused, image, text, logit_scale, 0);
}

torch::Tensor infonce_loss(const torch::Tensor& image_local, const torch::Tensor& text_local,
                           const torch::Tensor& image_all, const torch::Tensor& text_all,
                           int64_t offset, const torch::Tensor& logit_scale,
                           const config::LossConfig& config) {
  switch (select_implementation(config, image_local)) {
    case LossPath::kReference:
      return infonce_loss_reference(image_local, text_local, image_all, text_all, offset,
                                    logit_scale);
    case LossPath::kTiled:
      return infonce_loss_tiled(image_local, text_local, image_all, text_all, offset, logit_scale,
                                config.tile_size);
    case LossPath::kFused:
      break;
  }
  return infonce_loss_fused(image_local, text_local, image_all, text_all, offset, logit_scale);
}

torch::Tensor infonce_loss(const torch::Tensor& image, const torch::Tensor& text,
                           const torch::Tensor& logit_scale, const config::LossConfig& config) {
  switch (select_implementation(config, image)) {
    case LossPath::kReference:
      return infonce_loss_reference(image, text, logit_scale);
    case LossPath::kTiled:
      return infonce_loss_tiled(image, text, logit_scale, config.tile_size);
    case LossPath::kFused:
      break;
  }
  return infonce_loss_fused(image, text, logit_scale);
}

}  // namespace duet::losses
