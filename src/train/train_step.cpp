#include "train/train_step.h"

#include <torch/torch.h>

#include "common/autocast.h"
#include "common/error.h"
#include "data/loader.h"
#include "losses/contrastive_loss.h"
#include "models/clip_model.h"

namespace duet::train {
namespace {

// Reduced-precision (autocast) features go to the loss in float32; float32 and float64 stay.
torch::Tensor loss_precision(const torch::Tensor& features) {
  const auto type = features.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? features.to(torch::kFloat32) : features;
}

}  // namespace

double accumulate_gradients(models::ClipModelImpl& model, const std::vector<data::Batch>& micro,
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
  double loss_value = 0.0;
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
    image = loss_precision(image);
    text = loss_precision(text);
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
    loss_value = loss.item<double>();
  }
  return loss_value;
}

}  // namespace duet::train
