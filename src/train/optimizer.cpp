#include "train/optimizer.h"

#include "common/logging.h"

namespace duet::train {

bool exempt_from_weight_decay(const std::string& name, const torch::Tensor& parameter) {
  auto has = [&name](const char* part) { return name.find(part) != std::string::npos; };
  return parameter.dim() < 2 || has("embedding") || has("probe") || has("logit_scale") ||
         has("logit_bias") || has("bias");
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& model,
                                                const config::OptimConfig& optim) {
  std::vector<torch::Tensor> decay;
  std::vector<torch::Tensor> no_decay;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) {
      continue;
    }
    (exempt_from_weight_decay(item.key(), item.value()) ? no_decay : decay).push_back(item.value());
  }
  auto options = [&optim](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(optim.lr)
                                                            .betas({optim.beta1, optim.beta2})
                                                            .eps(optim.eps)
                                                            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(optim.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  log::get("train")->debug("AdamW: {} tensors with weight decay, {} without", decay.size(),
                           no_decay.size());
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(optim.lr));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
}

}  // namespace duet::train
