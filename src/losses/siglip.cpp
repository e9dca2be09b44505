// SigLIP: the reference (plain ATen), one autograd function for the tiled and fused engines
// (engines.h: forward gives the loss and saves only the inputs, backward recomputes the blocks
// for the gradients that are needed), and the dispatch.
#include "losses/siglip.h"

#include <torch/autograd.h>

#include "common/error.h"
#include "losses/engines.h"
#include "losses/implementation.h"
#include "losses/loss_checks.h"

namespace duet::losses {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SigLipFunction : public torch::autograd::Function<SigLipFunction> {
  // x_local [n, D], y_all [M, D], logit_scale and logit_bias 0-dim; path: kTiled or kFused.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_local,
                               const torch::Tensor& y_all, const torch::Tensor& logit_scale,
                               const torch::Tensor& logit_bias, int64_t offset, bool one_process,
                               int64_t path, int64_t tile_size) {
    const detail::SigLipInputs in{x_local, y_all, offset, one_process, logit_scale, logit_bias};
    ctx->save_for_backward({x_local, y_all, logit_scale, logit_bias});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["one_process"] = one_process;
    ctx->saved_data["path"] = path;
    ctx->saved_data["tile_size"] = tile_size;
    return static_cast<LossPath>(path) == LossPath::kFused
               ? detail::siglip_forward_fused(in)
               : detail::siglip_forward_tiled(in, tile_size);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    const detail::SigLipInputs in{
        s[0], s[1], ctx->saved_data["offset"].toInt(), ctx->saved_data["one_process"].toBool(),
        s[2], s[3]};
    const detail::SigLipWanted wanted{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                      ctx->needs_input_grad(2), ctx->needs_input_grad(3)};
    const auto path = static_cast<LossPath>(ctx->saved_data["path"].toInt());
    const detail::SigLipGrads g =
        path == LossPath::kFused
            ? detail::siglip_backward_fused(in, grad_outputs[0], wanted)
            : detail::siglip_backward_tiled(in, grad_outputs[0], wanted,
                                            ctx->saved_data["tile_size"].toInt());
    return {g.x_local,       g.y_all,         g.logit_scale,   g.logit_bias,
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor apply(const char* op, LossPath path, const torch::Tensor& x_local,
                    const torch::Tensor& y_all, int64_t offset, bool one_process,
                    const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                    int64_t tile_size) {
  check_siglip_inputs(op, x_local, y_all, offset, logit_scale, logit_bias);
  if (one_process) {
    DUET_CHECK(y_all.size(0) == x_local.size(0),
               "{}: in one process image and text must have the same rows, got {} and {}", op,
               describe(x_local), describe(y_all));
  }
  return SigLipFunction::apply(x_local, y_all, logit_scale, logit_bias, offset, one_process,
                               static_cast<int64_t>(path), tile_size);
}

}  // namespace

namespace detail {
std::optional<int64_t> siglip_node_path(const torch::autograd::Node* node) {
  const auto* ours = dynamic_cast<const torch::autograd::CppNode<SigLipFunction>*>(node);
  if (ours == nullptr) {
    return std::nullopt;
  }
  return ours->ctx_.saved_data.at("path").toInt();
}
}  // namespace detail

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
  check_tile_size("siglip_loss_tiled", tile_size);
  return apply("siglip_loss_tiled", LossPath::kTiled, x_local, y_all, offset, false, logit_scale,
               logit_bias, tile_size);
}

torch::Tensor siglip_loss_tiled(const torch::Tensor& image, const torch::Tensor& text,
                                const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                                int64_t tile_size) {
  check_tile_size("siglip_loss_tiled", tile_size);
  return apply("siglip_loss_tiled", LossPath::kTiled, image, text, 0, true, logit_scale, logit_bias,
               tile_size);
}

torch::Tensor siglip_loss_fused(const torch::Tensor& x_local, const torch::Tensor& y_all,
                                int64_t offset, const torch::Tensor& logit_scale,
                                const torch::Tensor& logit_bias) {
  return apply("siglip_loss_fused", LossPath::kFused, x_local, y_all, offset, false, logit_scale,
               logit_bias, 0);
}

torch::Tensor siglip_loss_fused(const torch::Tensor& image, const torch::Tensor& text,
                                const torch::Tensor& logit_scale, const torch::Tensor& logit_bias) {
  return apply("siglip_loss_fused", LossPath::kFused, image, text, 0, true, logit_scale, logit_bias,
               0);
}

torch::Tensor siglip_loss(const torch::Tensor& x_local, const torch::Tensor& y_all, int64_t offset,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                          const config::LossConfig& config) {
  switch (select_implementation(config, x_local)) {
    case LossPath::kReference:
      return siglip_loss_reference(x_local, y_all, offset, logit_scale, logit_bias);
    case LossPath::kTiled:
      return siglip_loss_tiled(x_local, y_all, offset, logit_scale, logit_bias, config.tile_size);
    case LossPath::kFused:
      break;
  }
  return siglip_loss_fused(x_local, y_all, offset, logit_scale, logit_bias);
}

torch::Tensor siglip_loss(const torch::Tensor& image, const torch::Tensor& text,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias,
                          const config::LossConfig& config) {
  switch (select_implementation(config, image)) {
    case LossPath::kReference:
      return siglip_loss_reference(image, text, 0, logit_scale, logit_bias);
    case LossPath::kTiled:
      return siglip_loss_tiled(image, text, logit_scale, logit_bias, config.tile_size);
    case LossPath::kFused:
      break;
  }
  return siglip_loss_fused(image, text, logit_scale, logit_bias);
}

}  // namespace duet::losses
