#include "train/train_step.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "common/autocast.h"
#include "common/error.h"
#include "data/loader.h"
#include "losses/contrastive_loss.h"
#include "models/clip_model.h"

namespace duet::train {

torch::Tensor accumulate_gradients(models::ClipModelImpl& model,
                                   const std::vector<data::Batch>& micro,
                                   const StepOptions& options) {
  DUET_CHECK(!micro.empty(), "accumulate_gradients needs at least one micro-batch");
  const auto device = options.device;
  auto autocast = [&]() { return AutocastScope(device.type(), options.bf16, at::kBFloat16); };
  const size_t count = micro.size();
  const bool accumulate = count > 1;

  std::vector<torch::Tensor> image_cache;
  std::vector<torch::Tensor> text_cache;
  if (accumulate) {
    torch::NoGradGuard no_grad;
    const auto precision = autocast();
    for (const auto& batch : micro) {
      image_cache.push_back(model.encode_image(batch.images.to(device)));
      text_cache.push_back(model.encode_text(batch.tokens.to(device)));
    }
  }
  torch::Tensor loss_value;
  for (size_t k = 0; k < count; ++k) {
    const auto& batch = micro[k];
    torch::Tensor image;
    torch::Tensor text;
    {
      const auto precision = autocast();
      image = model.encode_image(batch.images.to(device));
      text = model.encode_text(batch.tokens.to(device));
    }
    if (accumulate) {  // this micro-batch live, the others cached
      image_cache[k] = image;
      text_cache[k] = text;
      image = torch::cat(image_cache);
      text = torch::cat(text_cache);
      image_cache[k] = image_cache[k].detach();
      text_cache[k] = text_cache[k].detach();
    }
    losses::ContrastiveBatch contrastive;
    if (options.gather.all_gather) {
      contrastive.image_local = image;
      contrastive.text_local = text;
      contrastive.image_all = options.gather.all_gather(image);
      contrastive.text_all = options.gather.all_gather(text);
      contrastive.offset = options.gather.rank * image.size(0);
    } else {
      contrastive = losses::ContrastiveBatch::single_process(image, text);
    }
    const torch::Tensor scale = k == 0 ? model.logit_scale : model.logit_scale.detach();
    torch::Tensor bias;
    if (model.logit_bias.defined()) {
      bias = k == 0 ? model.logit_bias : model.logit_bias.detach();
    }
    const torch::Tensor loss = losses::contrastive_loss(contrastive, scale, bias, options.loss);
    loss.backward();
    loss_value = loss.detach();
  }
  return loss_value;
}

GradientCheck clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm,
                             const torch::Tensor& loss) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : parameters) {
    if (p.grad().defined()) {
      grads.push_back(p.grad());
    }
  }
  GradientCheck check;
  if (grads.empty()) {
    check.norm = torch::zeros({}, loss.options().dtype(torch::kFloat32));
  } else {
    // One norm per tensor (a multi-tensor kernel on a GPU), then the norm of the norms.
    std::vector<torch::Tensor> norms = at::_foreach_norm(grads, 2);
    const bool one_dtype = std::all_of(norms.begin(), norms.end(), [&](const torch::Tensor& n) {
      return n.scalar_type() == norms.front().scalar_type();
    });
    if (!one_dtype) {
      for (torch::Tensor& n : norms) {
        n = n.to(torch::kFloat32);
      }
    }
    check.norm = at::linalg_vector_norm(torch::stack(norms), 2);
    if (std::isfinite(max_norm)) {
      // clip_grad_norm_'s coefficient, clamped instead of branched on, so the host never reads
      // it: gradients are scaled by 1 when the norm is within the limit.
      const torch::Tensor coefficient = (max_norm / (check.norm + 1e-6)).clamp_max(1.0);
      at::_foreach_mul_(grads, coefficient);
    }
  }
  check.finite = check.norm.isfinite().logical_and(loss.isfinite());
  return check;
}

}  // namespace duet::train
